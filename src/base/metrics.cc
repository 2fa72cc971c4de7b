#include "base/metrics.h"

#include <cassert>
#include <charconv>
#include <cmath>

namespace locrit {
namespace {

// The shortest text that reads back as `v` ("0.0005", "1", "2.5"); +Inf as Prometheus spells it.
std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  // Plain decimals for the usual magnitudes ("0.0005" rather than "5e-04").
  const double magnitude = std::fabs(v);
  const bool plain = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15);
  const auto [end, ec] = plain ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed)
                               : std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

void AppendEscaped(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace

Histogram::Histogram(std::span<const double> upper_bounds_seconds) : bounds_(upper_bounds_seconds) {
  assert(bounds_.size() <= kMaxBuckets);
  bound_micros_.reserve(bounds_.size());
  for (double b : bounds_) bound_micros_.push_back(static_cast<int64_t>(std::llround(b * 1e6)));
}

void Histogram::ObserveMicros(int64_t micros) {
  if (micros < 0) micros = 0;
  // Few buckets: a linear scan beats a binary search and keeps the code obvious.
  size_t i = 0;
  while (i < bound_micros_.size() && micros > bound_micros_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(micros, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.reserve(bounds_.size());
  int64_t running = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running + buckets_[bounds_.size()].load(std::memory_order_relaxed);
  s.sum_seconds = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  // HELP text escapes only backslash and newline.
  for (char c : help) {
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::Labels(std::initializer_list<MetricLabel> labels, std::string_view le) {
  if (labels.size() == 0 && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += name;
    out_ += "=\"";
    AppendEscaped(out_, value);
    out_ += '"';
  }
  if (!le.empty()) {
    if (!first) out_ += ',';
    out_ += "le=\"";
    out_ += le;
    out_ += '"';
  }
  out_ += '}';
}

void PrometheusText::Sample(std::string_view name, std::initializer_list<MetricLabel> labels,
                            int64_t value) {
  out_ += name;
  Labels(labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusText::Sample(std::string_view name, std::initializer_list<MetricLabel> labels,
                            double value) {
  out_ += name;
  Labels(labels);
  out_ += ' ';
  out_ += FormatDouble(value);
  out_ += '\n';
}

void PrometheusText::HistogramSamples(std::string_view name,
                                      std::initializer_list<MetricLabel> labels,
                                      const Histogram::Snapshot& snapshot) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
    out_ += bucket;
    Labels(labels, FormatDouble(snapshot.upper_bounds[i]));
    out_ += ' ';
    out_ += std::to_string(snapshot.cumulative[i]);
    out_ += '\n';
  }
  out_ += bucket;
  Labels(labels, "+Inf");
  out_ += ' ';
  out_ += std::to_string(snapshot.count);
  out_ += '\n';
  Sample(std::string(name) + "_sum", labels, snapshot.sum_seconds);
  Sample(std::string(name) + "_count", labels, snapshot.count);
}

}  // namespace locrit
