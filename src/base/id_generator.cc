#include "base/id_generator.h"

#include <array>
#include <cstdio>

namespace locrit {
namespace {

constexpr uint64_t kRandBits = 62;
constexpr uint64_t kRandMask = (uint64_t{1} << kRandBits) - 1;

void AppendHex(std::string& out, uint64_t value, int nibbles) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = nibbles - 1; i >= 0; --i) out.push_back(kDigits[(value >> (i * 4)) & 0xF]);
}

}  // namespace

IdGenerator::IdGenerator(const Clock* clock, uint64_t seed) : clock_(clock), rng_(seed) {}

std::string IdGenerator::Next() {
  const uint64_t micros = static_cast<uint64_t>(clock_->NowMicros());
  const uint64_t millis = micros / 1000;
  const uint64_t sub_ms = ((micros % 1000) * 4096) / 1000;  // 12 bits of the millisecond.
  uint64_t time = ((millis & 0xFFFFFFFFFFFF) << 12) | sub_ms;

  uint64_t rand;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rand = rng_() & kRandMask;
    if (time <= last_time_) {
      // Same tick (or the clock stepped back): stay on the last tick and count up from the last
      // id, by a random step so that the next id is still hard to guess.
      time = last_time_;
      const uint64_t step = 1 + (rand & 0xFFFFFF);
      rand = last_rand_ + step;
      if (rand > kRandMask) {
        ++time;
        rand &= kRandMask;
      }
    }
    last_time_ = time;
    last_rand_ = rand;
  }

  const uint64_t hi = (time >> 12) << 16 | uint64_t{0x7} << 12 | (time & 0xFFF);
  const uint64_t lo = uint64_t{0x2} << 62 | rand;
  std::string out;
  out.reserve(36);
  AppendHex(out, hi >> 32, 8);
  out.push_back('-');
  AppendHex(out, (hi >> 16) & 0xFFFF, 4);
  out.push_back('-');
  AppendHex(out, hi & 0xFFFF, 4);
  out.push_back('-');
  AppendHex(out, lo >> 48, 4);
  out.push_back('-');
  AppendHex(out, lo & 0xFFFFFFFFFFFF, 12);
  return out;
}

bool IdGenerator::LooksLikeUuid(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string UnguessableId() {
  std::random_device entropy;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    char word[9];
    std::snprintf(word, sizeof(word), "%08x", static_cast<unsigned>(entropy()));
    id += word;
  }
  return id;
}

}  // namespace locrit
