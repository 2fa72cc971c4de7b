// Admin tokens: how they are made, hashed, stored and checked.
//
// A token is only ever kept as its SHA-256 (hex): tokens from the config file or
// LOCRIT_ADMIN_TOKEN are hashed at start-up, and `locrit token create` prints a new token once
// and writes only its hash to <data>/admin_tokens (one "name<TAB>sha256-hex<TAB>created" line per
// token, mode 0600, replaced atomically). Checking a presented token hashes it and compares it
// with every known hash in constant time. Pure apart from the file functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace locrit {

inline constexpr std::string_view kAdminTokensFile = "admin_tokens";

// "lct_" followed by 64 hex digits of fresh randomness (OpenSSL RAND_bytes).
Result<std::string> NewAdminToken();

// The SHA-256 of `token`, as 64 lower-case hex digits.
std::string HashAdminToken(std::string_view token);

// Whether `token` hashes to one of `hashes`. Every hash is compared, in constant time.
bool AdminTokenMatches(std::string_view token, const std::vector<std::string>& hashes);

struct StoredAdminToken {
  std::string name;
  std::string hash;        // SHA-256 hex.
  std::string created_at;  // RFC 3339.
};

// Token names: 1-64 of [A-Za-z0-9._-].
Status ValidateAdminTokenName(std::string_view name);

// The tokens stored in `data_dir` (none when the file does not exist). A malformed line is
// corruption naming the line.
Result<std::vector<StoredAdminToken>> LoadAdminTokens(const std::string& data_dir);

// Adds a token; already_exists when the name is taken.
Status AddAdminToken(const std::string& data_dir, const StoredAdminToken& token);

// Removes the token called `name`; not_found when there is none.
Status RevokeAdminToken(const std::string& data_dir, std::string_view name);

}  // namespace locrit
