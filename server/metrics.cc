#include "server/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "prometheus/check_names.h"
#include "prometheus/text_serializer.h"

namespace grinqh::metrics {
namespace {

// The fields of /proc/self/stat after the command name, which is in parentheses and may
// itself hold spaces and parentheses; the first is field 3 (state) of proc(5).
std::vector<std::string> ProcSelfStatFields() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  std::getline(file, line);
  const size_t name_end = line.rfind(')');
  if (name_end == std::string::npos) return {};
  std::istringstream rest(line.substr(name_end + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// proc(5)'s field number `n` (1-based) of /proc/self/stat, as a number; 0 when missing.
double StatField(const std::vector<std::string>& fields, size_t n) {
  return n >= 3 && n - 3 < fields.size() ? std::stod(fields[n - 3]) : 0;
}

double ClockTicksPerSecond() { return double(sysconf(_SC_CLK_TCK)); }

}  // namespace

std::string ExposeText(const std::vector<const prometheus::Collectable*>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const prometheus::Collectable* collectable : collectables) {
    for (prometheus::MetricFamily& family : collectable->Collect()) families.push_back(std::move(family));
  }
  // prometheus-cpp keeps series in hash order; sorted, a scrape reads the same every time.
  std::stable_sort(families.begin(), families.end(),
                   [](const auto& a, const auto& b) { return a.name < b.name; });
  for (prometheus::MetricFamily& family : families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  return prometheus::TextSerializer().Serialize(families);
}

void ScrapeTimeMetrics::AddGauge(const std::string& name, const std::string& help, std::function<double()> read) {
  Add({name, help, prometheus::MetricType::Gauge, std::move(read)});
}

void ScrapeTimeMetrics::AddCounter(const std::string& name, const std::string& help,
                                   std::function<double()> read) {
  Add({name, help, prometheus::MetricType::Counter, std::move(read)});
}

void ScrapeTimeMetrics::Add(Entry entry) {
  if (!prometheus::CheckMetricName(entry.name)) throw std::invalid_argument("Invalid metric name " + entry.name);
  const auto same_name = [&entry](const Entry& e) { return e.name == entry.name; };
  if (std::any_of(entries_.begin(), entries_.end(), same_name)) {
    throw std::invalid_argument("Family name already exists: " + entry.name);
  }
  entries_.push_back(std::move(entry));
}

std::vector<prometheus::MetricFamily> ScrapeTimeMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  for (const Entry& entry : entries_) {
    prometheus::MetricFamily& family = families.emplace_back();
    family.name = entry.name;
    family.help = entry.help;
    family.type = entry.type;
    prometheus::ClientMetric& metric = family.metric.emplace_back();
    const double value = entry.read ? entry.read() : 0;
    (entry.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value) = value;
  }
  return families;
}

double ProcessCpuSeconds() {
  const std::vector<std::string> fields = ProcSelfStatFields();
  return (StatField(fields, 14) + StatField(fields, 15)) / ClockTicksPerSecond();  // utime + stime
}

double ProcessResidentMemoryBytes() {
  std::ifstream file("/proc/self/statm");
  double size_pages = 0, resident_pages = 0;
  if (!(file >> size_pages >> resident_pages)) return 0;
  return resident_pages * double(sysconf(_SC_PAGESIZE));
}

double ProcessStartTimeSeconds() {
  // starttime counts clock ticks since boot; /proc/stat's btime is the boot in Unix seconds.
  std::ifstream stat("/proc/stat");
  double boot_time = 0;
  for (std::string key; stat >> key;) {
    if (key == "btime") {
      stat >> boot_time;
      break;
    }
  }
  if (boot_time == 0) return 0;
  return boot_time + StatField(ProcSelfStatFields(), 22) / ClockTicksPerSecond();
}

void AddProcessMetrics(ScrapeTimeMetrics& metrics) {
  metrics.AddCounter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                     ProcessCpuSeconds);
  metrics.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.", ProcessResidentMemoryBytes);
  const double start_time = ProcessStartTimeSeconds();  // fixed for the process' life
  metrics.AddGauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                   [start_time] { return start_time; });
}

}  // namespace grinqh::metrics
