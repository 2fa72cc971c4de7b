// Clock: the one source of wall time. Injected everywhere so tests can use a FakeClock and never
// sleep. Implementations must be thread-safe.
#pragma once

#include <cstdint>

namespace locrit {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch (UTC).
  virtual int64_t NowMicros() const = 0;
  int64_t NowMillis() const { return NowMicros() / 1000; }
};

// The real clock. Stateless and thread-safe; cli/ builds the one the process uses.
class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override;
};

}  // namespace locrit
