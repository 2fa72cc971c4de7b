// The metric primitives and the Prometheus text exposition format (version 0.0.4).
#include "base/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace locrit {
namespace {

using ::testing::HasSubstr;

TEST(PrometheusTextTest, CounterAndGaugeFamilies) {
  PrometheusText text;
  text.Family("locrit_things_total", "counter", "Things done.");
  text.Sample("locrit_things_total", {{"kind", "a"}, {"code", "ok"}}, int64_t{3});
  text.Sample("locrit_things_total", {{"kind", "b"}, {"code", "ok"}}, int64_t{0});
  text.Family("locrit_level", "gauge", "A level.");
  text.Sample("locrit_level", {}, int64_t{-2});
  text.Sample("locrit_ratio", {}, 0.25);
  EXPECT_EQ(text.text(),
            "# HELP locrit_things_total Things done.\n"
            "# TYPE locrit_things_total counter\n"
            "locrit_things_total{kind=\"a\",code=\"ok\"} 3\n"
            "locrit_things_total{kind=\"b\",code=\"ok\"} 0\n"
            "# HELP locrit_level A level.\n"
            "# TYPE locrit_level gauge\n"
            "locrit_level -2\n"
            "locrit_ratio 0.25\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  PrometheusText text;
  text.Family("m", "counter", "back\\slash\nnewline \"quotes\" stay");
  text.Sample("m", {{"route", "a\"b\\c\nd"}}, int64_t{1});
  EXPECT_EQ(text.text(),
            "# HELP m back\\\\slash\\nnewline \"quotes\" stay\n"
            "# TYPE m counter\n"
            "m{route=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(HistogramTest, CumulativeBucketsSumAndCount) {
  static constexpr double kBounds[] = {0.001, 0.01, 0.1};
  Histogram h(kBounds);
  h.ObserveMicros(500);      // <= 1 ms
  h.ObserveMicros(1000);     // exactly on a bound: counted in it
  h.ObserveMicros(5000);     // <= 10 ms
  h.ObserveMicros(2000000);  // beyond every bound: +Inf only
  h.ObserveMicros(-7);       // a clock that stepped back counts as zero
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<int64_t>{3, 4, 4}));
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 2.0065);

  PrometheusText text;
  text.HistogramSamples("d_seconds", {{"route", "/x"}}, s);
  EXPECT_EQ(text.text(),
            "d_seconds_bucket{route=\"/x\",le=\"0.001\"} 3\n"
            "d_seconds_bucket{route=\"/x\",le=\"0.01\"} 4\n"
            "d_seconds_bucket{route=\"/x\",le=\"0.1\"} 4\n"
            "d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
            "d_seconds_sum{route=\"/x\"} 2.0065\n"
            "d_seconds_count{route=\"/x\"} 5\n");
}

TEST(HistogramTest, BoundsPrintAsPlainDecimals) {
  Histogram h(kRequestSecondsBuckets);
  h.ObserveMicros(100);
  PrometheusText text;
  text.HistogramSamples("d", {}, h.Read());
  EXPECT_THAT(text.text(), HasSubstr("d_bucket{le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text.text(), HasSubstr("d_bucket{le=\"60\"} 1\n"));
  EXPECT_THAT(text.text(), HasSubstr("d_sum 0.0001\n"));
}

TEST(MetricsTest, ConcurrentRecordingLosesNothing) {
  Counter counter;
  Gauge gauge;
  Histogram h(kLlmSecondsBuckets);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.Add();
        gauge.Add();
        gauge.Sub();
        h.ObserveMicros(i);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 40000);
  EXPECT_EQ(gauge.value(), 0);
  EXPECT_EQ(h.Read().count, 40000);
}

}  // namespace
}  // namespace locrit
