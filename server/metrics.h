// What prometheus-cpp (Debian's 1.0.1, core only) leaves to us: metrics read when scraped,
// the process' CPU and memory, and one text exposition of several collectables.
//
// The metric families themselves are prometheus-cpp's (prometheus::Registry, Counter, Gauge,
// Histogram; serving_metrics.h declares the server's), and the text is its TextSerializer's.
// We serve that text with the HTTP library the server already runs (metrics_http.h), not
// with prometheus-cpp's civetweb pull exposer: one HTTP stack is simpler to harden.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"

namespace grinqh::metrics {

// Every family of `collectables`, sorted by name and its series by labels (stable for humans
// and tests), in the text exposition format 0.0.4. A family without series yet is left out,
// as prometheus-cpp does.
std::string ExposeText(const std::vector<const prometheus::Collectable*>& collectables);

// Unlabelled metrics whose value a function returns at every scrape, on the scraping thread
// (so it must be thread-safe and quick): live state owned elsewhere, such as queue depth.
// prometheus-cpp has no callback metrics. Bad or repeated names throw std::invalid_argument,
// as prometheus-cpp's registry does.
class ScrapeTimeMetrics : public prometheus::Collectable {
 public:
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> read);
  // `read` must never decrease (Prometheus' rate() reads a drop as a restart).
  void AddCounter(const std::string& name, const std::string& help, std::function<double()> read);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Entry {
    std::string name, help;
    prometheus::MetricType type;
    std::function<double()> read;
  };
  void Add(Entry entry);

  std::vector<Entry> entries_;  // filled before serving starts; read-only afterwards
};

// The process as Prometheus' client libraries report it, from /proc/self:
// process_cpu_seconds_total (user + system), process_resident_memory_bytes, and
// process_start_time_seconds (seconds since the Unix epoch).
void AddProcessMetrics(ScrapeTimeMetrics& metrics);
// The readings themselves; 0 when /proc cannot be read.
double ProcessCpuSeconds();
double ProcessResidentMemoryBytes();
double ProcessStartTimeSeconds();

}  // namespace grinqh::metrics
