// UTF-8 validation and measure. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace locrit {

// True when `text` is well-formed UTF-8: no overlong forms, surrogates or code points past
// U+10FFFF. The empty string is valid.
bool IsValidUtf8(std::string_view text);

// The number of code points in valid UTF-8 `text`.
size_t CountCodePoints(std::string_view text);

// The first `max_code_points` code points of valid UTF-8 `text` (all of it when shorter): a cut
// that never splits a character.
std::string_view Utf8Prefix(std::string_view text, size_t max_code_points);

}  // namespace locrit
