#include "tests/support/e2e_http.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

namespace locrit::testing {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

HttpReply Send(const HttpCall& call) { return HttpClient().Send(call); }

HttpClient::HttpClient() : curl_(curl_easy_init()) {}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpReply HttpClient::Send(const HttpCall& call) {
  HttpReply reply;
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // Options of the last call go; its connection stays.
  curl_easy_setopt(curl, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, call.timeout_seconds);
  curl_slist* headers = nullptr;
  for (const std::string& h : call.headers) headers = curl_slist_append(headers, h.c_str());
  const bool has_body = !call.body.empty() || call.method == "POST";
  std::string content_type = call.content_type;
  if (content_type.empty() && has_body) content_type = "application/json";
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  if (has_body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) reply.error = curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) reply.content_type = type;
  curl_slist_free_all(headers);
  return reply;
}

boost::json::object JsonObject(const HttpReply& reply) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(reply.body, ec);
  EXPECT_FALSE(ec) << "not JSON: " << reply.body << reply.error;
  if (ec || !v.is_object()) return {};
  return v.get_object();
}

std::vector<std::string> ParseSse(const std::string& stream) {
  std::vector<std::string> events;
  std::string data;
  bool has_data = false;
  size_t i = 0;
  while (i < stream.size()) {
    const size_t end = stream.find_first_of("\r\n", i);
    if (end == std::string::npos) break;
    const std::string line = stream.substr(i, end - i);
    i = end + 1;
    if (stream[end] == '\r' && i < stream.size() && stream[i] == '\n') ++i;
    if (line.empty()) {
      if (has_data) events.push_back(data);
      data.clear();
      has_data = false;
      continue;
    }
    if (line[0] == ':') continue;
    const size_t colon = line.find(':');
    const std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (field == "data") {
      if (has_data) data += '\n';
      data += value;
      has_data = true;
    }
  }
  return events;
}

}  // namespace locrit::testing
