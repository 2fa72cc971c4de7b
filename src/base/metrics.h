// Metric primitives: Counter, Gauge and Histogram (fixed buckets), and PrometheusText, the writer
// of the Prometheus text exposition format (version 0.0.4).
//
// The primitives are plain relaxed atomics, so recording on a hot path costs one or two atomic
// adds and never takes a lock; a scrape reads them without stopping writers (a scrape may see a
// histogram's count one observation ahead of its buckets, which Prometheus tolerates). Each
// module owns its own metrics and the server reads them all when scraped: no global registry.
//
// Counter, Gauge, Histogram: thread-safe. PrometheusText: thread-compatible.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace locrit {

// A value that only goes up.
class Counter {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A value that goes up and down (open connections, queued items).
class Gauge {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void Sub(int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void Set(int64_t n) { value_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Bucket upper bounds, in seconds, for durations of HTTP requests (0.5 ms .. 60 s).
inline constexpr double kRequestSecondsBuckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
// Bucket upper bounds, in seconds, for calls to a language model server (10 ms .. 5 min).
inline constexpr double kLlmSecondsBuckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                2.5,  5,     10,   30,  60,   120, 300};

// Durations counted into fixed buckets. Observations are in microseconds (integers, so the sum is
// an atomic integer too); the bounds are in seconds, as Prometheus expects.
class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 24;

  // REQUIRES: `upper_bounds_seconds` ascending, at most kMaxBuckets, and it outlives the
  // histogram (the constants above do).
  explicit Histogram(std::span<const double> upper_bounds_seconds);

  void ObserveMicros(int64_t micros);

  struct Snapshot {
    std::span<const double> upper_bounds;  // Seconds.
    std::vector<int64_t> cumulative;       // Per bound: observations <= it.
    int64_t count = 0;                     // All observations (the +Inf bucket).
    double sum_seconds = 0;
  };
  Snapshot Read() const;

 private:
  std::span<const double> bounds_;
  std::vector<int64_t> bound_micros_;                   // bounds_ in microseconds.
  std::atomic<int64_t> buckets_[kMaxBuckets + 1] = {};  // Non-cumulative; the last is +Inf.
  std::atomic<int64_t> sum_micros_{0};
};

// One label of a sample: name and (unescaped) value.
using MetricLabel = std::pair<std::string_view, std::string_view>;

// Writes the Prometheus text format: a family's HELP and TYPE lines once, then its samples.
// Label values are escaped (backslash, double quote, newline); names are the caller's constants.
class PrometheusText {
 public:
  // Starts a family. `type` is "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, std::initializer_list<MetricLabel> labels, int64_t value);
  void Sample(std::string_view name, std::initializer_list<MetricLabel> labels, double value);
  // The _bucket (cumulative, with le), _sum and _count lines of one histogram.
  void HistogramSamples(std::string_view name, std::initializer_list<MetricLabel> labels,
                        const Histogram::Snapshot& snapshot);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void Labels(std::initializer_list<MetricLabel> labels, std::string_view le = {});
  std::string out_;
};

}  // namespace locrit
