// FakeClock: a Clock that moves only when told. Thread-safe.
#pragma once

#include <atomic>

#include "base/clock.h"

namespace locrit::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'735'718'400'000'000)  // 2025-01-01T08:00:00Z
      : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  void AdvanceMicros(int64_t delta) { now_ += delta; }
  void AdvanceMillis(int64_t delta) { now_ += delta * 1000; }
  void SetMicros(int64_t t) { now_ = t; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace locrit::testing
