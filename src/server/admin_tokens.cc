#include "server/admin_tokens.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace locrit {
namespace {

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

std::filesystem::path TokensPath(const std::string& data_dir) {
  return std::filesystem::path(data_dir) / std::string(kAdminTokensFile);
}

bool IsHexHash(std::string_view s) {
  return s.size() == 2 * SHA256_DIGEST_LENGTH && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Writes every token, readable by the owner only, replacing the file atomically.
Status SaveAdminTokens(const std::string& data_dir, const std::vector<StoredAdminToken>& tokens) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return IoError("cannot create " + data_dir + ": " + ec.message());
  const std::filesystem::path path = TokensPath(data_dir);
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError("cannot write " + tmp.string());
    ::chmod(tmp.c_str(), 0600);
    for (const StoredAdminToken& t : tokens) {
      out << t.name << '\t' << t.hash << '\t' << t.created_at << '\n';
    }
    if (!out.flush()) return IoError("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("cannot write " + path.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<std::string> NewAdminToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return InternalError("no randomness for a token");
  return "lct_" + Hex(bytes, sizeof bytes);
}

std::string HashAdminToken(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return Hex(digest, sizeof digest);
}

bool AdminTokenMatches(std::string_view token, const std::vector<std::string>& hashes) {
  const std::string presented = HashAdminToken(token);
  bool match = false;
  for (const std::string& hash : hashes) {
    // Hashes all have the same length; compare each whole one so timing says nothing.
    if (hash.size() != presented.size()) continue;
    match |= CRYPTO_memcmp(hash.data(), presented.data(), presented.size()) == 0;
  }
  return match;
}

Status ValidateAdminTokenName(std::string_view name) {
  const bool valid =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
      });
  if (!valid) {
    return InvalidArgumentError("a token name is 1-64 letters, digits, '.', '_' or '-', got \"" +
                                std::string(name) + "\"");
  }
  return Status::Ok();
}

Result<std::vector<StoredAdminToken>> LoadAdminTokens(const std::string& data_dir) {
  const std::filesystem::path path = TokensPath(data_dir);
  std::vector<StoredAdminToken> tokens;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return tokens;
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read " + path.string());
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    StoredAdminToken token;
    std::stringstream fields(line);
    std::getline(fields, token.name, '\t');
    std::getline(fields, token.hash, '\t');
    std::getline(fields, token.created_at);
    if (!ValidateAdminTokenName(token.name).ok() || !IsHexHash(token.hash)) {
      return CorruptionError(path.string() + ":" + std::to_string(number) +
                             ": not a \"name<TAB>sha256<TAB>created\" line");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

Status AddAdminToken(const std::string& data_dir, const StoredAdminToken& token) {
  if (Status s = ValidateAdminTokenName(token.name); !s.ok()) return s;
  auto tokens = LoadAdminTokens(data_dir);
  if (!tokens.ok()) return tokens.status();
  for (const StoredAdminToken& t : *tokens) {
    if (t.name == token.name) return AlreadyExistsError("a token is already called " + t.name);
  }
  tokens->push_back(token);
  return SaveAdminTokens(data_dir, *tokens);
}

Status RevokeAdminToken(const std::string& data_dir, std::string_view name) {
  auto tokens = LoadAdminTokens(data_dir);
  if (!tokens.ok()) return tokens.status();
  const auto removed = std::remove_if(tokens->begin(), tokens->end(),
                                      [&](const StoredAdminToken& t) { return t.name == name; });
  if (removed == tokens->end()) return NotFoundError("no token is called " + std::string(name));
  tokens->erase(removed, tokens->end());
  return SaveAdminTokens(data_dir, *tokens);
}

}  // namespace locrit
