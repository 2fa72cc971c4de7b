// IdGenerator: time-ordered, 128-bit unique ids in UUIDv7 text form
// ("0192f7a0-3c4d-7e21-9f00-1a2b3c4d5e6f").
//
// Layout: 48-bit Unix milliseconds, version 7, 12 bits of sub-millisecond time, the variant, and
// 62 random bits. Ids from one generator are strictly increasing even when the clock stands still
// or steps back (two ids in the same microsecond differ and sort in generation order), so they
// never collide within a process; across generators the 62 random bits make a collision
// negligible. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "base/clock.h"

namespace locrit {

class IdGenerator {
 public:
  // `clock` must outlive the generator. `seed` should come from a real entropy source outside
  // tests (cli/ uses std::random_device).
  IdGenerator(const Clock* clock, uint64_t seed);

  IdGenerator(const IdGenerator&) = delete;
  IdGenerator& operator=(const IdGenerator&) = delete;

  std::string Next();

  // True if `id` has the canonical UUID text shape (36 chars, lowercase hex, dashes).
  static bool LooksLikeUuid(const std::string& id);

 private:
  const Clock* const clock_;
  std::mutex mu_;
  std::mt19937_64 rng_;     // GUARDED_BY(mu_)
  uint64_t last_time_ = 0;  // GUARDED_BY(mu_): 48-bit ms << 12 | 12-bit sub-ms.
  uint64_t last_rand_ = 0;  // GUARDED_BY(mu_): 62 bits.
};

// 128 bits from the system's entropy source as 32 lower-case hex digits: for ids that must not be
// guessable (session and conversation ids given to callers), unlike the time-ordered ids above.
std::string UnguessableId();

}  // namespace locrit
