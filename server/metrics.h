// A small Prometheus metrics registry: counters, gauges and histograms, each a family with a
// fixed list of label names and one child per set of label values, rendered in the text
// exposition format 0.0.4. Ours because prometheus-cpp is not packaged; it knows nothing of
// HTTP (metrics_http.h serves it) or of what the server measures (serving_metrics.h).
//
// Updates are lock-free atomics; only finding a child by its label values takes the family's
// mutex, so hot paths keep the reference WithLabels returns. Registration mistakes (a bad or
// duplicate name, the wrong number of label values) are programming errors and abort with a
// message naming the metric, as client libraries' MustRegister does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grinqh::metrics {

// Only goes up. Negative and NaN increments are ignored: a counter that went down would read
// as a process restart to Prometheus' rate().
class Counter {
 public:
  void Increment(double amount = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Fixed buckets by upper bound (inclusive, as Prometheus' `le`), plus the implicit +Inf one.
// Each observation lands in one bucket; exposition makes the counts cumulative. NaN
// observations are ignored (they would poison `_sum`).
class Histogram {
 public:
  // `upper_bounds` must be finite and strictly increasing (checked when the family is made).
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// Label values in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// Common to every family: its name, help and type, and how to render its samples.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type)
      : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)) {}
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  // Appends the `# HELP` and `# TYPE` lines and every sample (nothing for a family without
  // children yet).
  void Render(std::string& out) const;

 protected:
  // Appends the sample lines only.
  virtual void RenderSamples(std::string& out) const = 0;

 private:
  std::string name_, help_, type_;
};

template <typename Metric>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::string type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make_child);

  // The child for these label values, made on first use. The reference lives as long as
  // the registry. Aborts when the number of values differs from the number of label names.
  Metric& WithLabels(const LabelValues& values);
  // The only child of a family without labels.
  Metric& Get() { return WithLabels({}); }

 protected:
  void RenderSamples(std::string& out) const override;

 private:
  struct Child {
    std::string label_text;  // `a="x",b="y"`, escaped, without braces
    std::unique_ptr<Metric> metric;
  };
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_child_;
  mutable std::mutex mutex_;
  std::map<LabelValues, Child> children_;  // sorted, so exposition is stable
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Families live as long as the registry. Names follow Prometheus' rules: metric names
  // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__";
  // a histogram may not use the label `le`.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names, std::vector<double> upper_bounds);
  // A gauge without labels whose value `read` returns at every scrape, on the scraping
  // thread (so `read` must be thread-safe and quick).
  void AddCallbackGauge(const std::string& name, const std::string& help, std::function<double()> read);

  // Every family, sorted by name, in the text exposition format 0.0.4.
  std::string Expose() const;

 private:
  // Checks the names (aborting on a mistake) and reserves the sample names the family writes.
  void Reserve(const std::string& name, const std::vector<std::string>& sample_names,
               const std::vector<std::string>& label_names);
  template <typename F>
  F& Insert(std::unique_ptr<F> family);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  std::set<std::string> sample_names_;  // names on sample lines, so no two families collide
};

// Exposition-format helpers, exposed for tests.
// `\` → `\\`, newline → `\n`, and in label values `"` → `\"`.
std::string EscapeHelp(std::string_view help);
std::string EscapeLabelValue(std::string_view value);
// Shortest text that parses back to the same double; NaN, +Inf and -Inf as Prometheus spells them.
std::string FormatValue(double value);

}  // namespace grinqh::metrics
