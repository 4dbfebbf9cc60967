#include "server/metrics.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace grinqh::metrics {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::abort();
}

bool IsMetricName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  });
}

bool IsLabelName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) || name.starts_with("__"))
    return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

void AppendSample(std::string& out, const std::string& name, const std::string& label_text,
                  const std::string& value) {
  out += name;
  if (!label_text.empty()) absl::StrAppend(&out, "{", label_text, "}");
  absl::StrAppend(&out, " ", value, "\n");
}

void RenderChild(std::string& out, const std::string& name, const std::string& label_text, const Counter& c) {
  AppendSample(out, name, label_text, FormatValue(c.Value()));
}

void RenderChild(std::string& out, const std::string& name, const std::string& label_text, const Gauge& g) {
  AppendSample(out, name, label_text, FormatValue(g.Value()));
}

void RenderChild(std::string& out, const std::string& name, const std::string& label_text,
                 const Histogram& h) {
  const Histogram::Snapshot snapshot = h.Read();
  const std::string separator = label_text.empty() ? "" : ",";
  const std::string bucket = name + "_bucket";
  for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
    const std::string le = i < h.upper_bounds().size() ? FormatValue(h.upper_bounds()[i]) : "+Inf";
    AppendSample(out, bucket, absl::StrCat(label_text, separator, "le=\"", le, "\""),
                 absl::StrCat(snapshot.cumulative_counts[i]));
  }
  AppendSample(out, name + "_sum", label_text, FormatValue(snapshot.sum));
  AppendSample(out, name + "_count", label_text, absl::StrCat(snapshot.cumulative_counts.back()));
}

class CallbackGaugeFamily : public FamilyBase {
 public:
  CallbackGaugeFamily(std::string name, std::string help, std::function<double()> read)
      : FamilyBase(std::move(name), std::move(help), "gauge"), read_(std::move(read)) {}

 protected:
  void RenderSamples(std::string& out) const override { AppendSample(out, name(), "", FormatValue(read_())); }

 private:
  const std::function<double()> read_;
};

}  // namespace

std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void Counter::Increment(double amount) {
  if (!(amount >= 0)) return;
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      bucket_counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1)) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // The first bound >= value: buckets are `le`, so a value on a bound counts in that bucket.
  const size_t bucket =
      size_t(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  bucket_counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  // Count and +Inf come from the same bucket reads, so they always agree and the buckets
  // are cumulative even while other threads observe.
  Snapshot snapshot;
  snapshot.cumulative_counts.resize(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += bucket_counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

void FamilyBase::Render(std::string& out) const {
  std::string samples;
  RenderSamples(samples);
  if (samples.empty()) return;
  absl::StrAppend(&out, "# HELP ", name_, " ", EscapeHelp(help_), "\n");
  absl::StrAppend(&out, "# TYPE ", name_, " ", type_, "\n", samples);
}

template <typename Metric>
Family<Metric>::Family(std::string name, std::string help, std::string type,
                       std::vector<std::string> label_names,
                       std::function<std::unique_ptr<Metric>()> make_child)
    : FamilyBase(std::move(name), std::move(help), std::move(type)),
      label_names_(std::move(label_names)),
      make_child_(std::move(make_child)) {}

template <typename Metric>
Metric& Family<Metric>::WithLabels(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    Fail(absl::StrCat(name(), " takes ", label_names_.size(), " label values (",
                      absl::StrJoin(label_names_, ","), "), got ", values.size()));
  }
  std::lock_guard lock(mutex_);
  auto it = children_.find(values);
  if (it == children_.end()) {
    std::vector<std::string> pairs;
    for (size_t i = 0; i < values.size(); ++i) {
      pairs.push_back(absl::StrCat(label_names_[i], "=\"", EscapeLabelValue(values[i]), "\""));
    }
    it = children_.emplace(values, Child{absl::StrJoin(pairs, ","), make_child_()}).first;
  }
  return *it->second.metric;
}

template <typename Metric>
void Family<Metric>::RenderSamples(std::string& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [values, child] : children_) RenderChild(out, name(), child.label_text, *child.metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::Reserve(const std::string& name, const std::vector<std::string>& sample_names,
                       const std::vector<std::string>& label_names) {
  if (!IsMetricName(name)) Fail(absl::StrCat("invalid metric name \"", name, "\""));
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) Fail(absl::StrCat(name, ": invalid label name \"", label, "\""));
    if (!seen.insert(label).second) Fail(absl::StrCat(name, ": label \"", label, "\" given twice"));
  }
  if (families_.count(name) > 0) Fail(absl::StrCat("metric ", name, " registered twice"));
  for (const std::string& sample : sample_names) {
    if (sample_names_.count(sample) > 0) Fail(absl::StrCat(name, ": its series ", sample, " already exist"));
  }
  sample_names_.insert(sample_names.begin(), sample_names.end());
}

template <typename F>
F& Registry::Insert(std::unique_ptr<F> family) {
  F& result = *family;
  const std::string name = family->name();
  families_.emplace(name, std::move(family));
  return result;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  Reserve(name, {name}, label_names);
  const bool unlabelled = label_names.empty();
  auto& family = Insert(std::make_unique<Family<Counter>>(name, help, "counter", std::move(label_names),
                                                          [] { return std::make_unique<Counter>(); }));
  if (unlabelled) family.Get();  // an unlabelled metric is exposed from the start, at 0
  return family;
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  Reserve(name, {name}, label_names);
  const bool unlabelled = label_names.empty();
  auto& family = Insert(std::make_unique<Family<Gauge>>(name, help, "gauge", std::move(label_names),
                                                        [] { return std::make_unique<Gauge>(); }));
  if (unlabelled) family.Get();
  return family;
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> upper_bounds) {
  if (std::find(label_names.begin(), label_names.end(), "le") != label_names.end()) {
    Fail(absl::StrCat(name, ": a histogram may not have the label \"le\""));
  }
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && upper_bounds[i] <= upper_bounds[i - 1])) {
      Fail(absl::StrCat(name, ": bucket bounds must be finite and strictly increasing"));
    }
  }
  std::lock_guard lock(mutex_);
  Reserve(name, {name + "_bucket", name + "_sum", name + "_count"}, label_names);
  const bool unlabelled = label_names.empty();
  auto& family = Insert(std::make_unique<Family<Histogram>>(
      name, help, "histogram", std::move(label_names),
      [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); }));
  if (unlabelled) family.Get();
  return family;
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Reserve(name, {name}, {});
  Insert(std::make_unique<CallbackGaugeFamily>(name, help, std::move(read)));
}

std::string Registry::Expose() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

}  // namespace grinqh::metrics
