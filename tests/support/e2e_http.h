// What the end-to-end tests need to talk to a real `locrit serve`: one HTTP request with a fresh
// libcurl handle (so every call is a real client on its own connection), the JSON body, and
// Server-Sent Events parsed the way a browser's EventSource reads them.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace locrit::testing {

struct HttpReply {
  long status = 0;
  std::string content_type;
  std::string headers;  // Raw response headers, status line included.
  std::string body;
  std::string error;  // libcurl's, when the transfer failed.
};

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::string body;                  // Sent as is when not empty (or when method is POST).
  std::string content_type;          // "" sends none; a body defaults to application/json.
  std::vector<std::string> headers;  // Extra request headers, "Name: value".
  long timeout_seconds = 60;
};

// One call on a fresh connection.
HttpReply Send(const HttpCall& call);

// One client whose connection libcurl keeps alive between calls (keep-alive tests). Not
// thread-safe: one per thread.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  HttpReply Send(const HttpCall& call);

 private:
  void* curl_;  // CURL*, kept out of this header.
};

// The body as a JSON object; a failed expectation (and {}) when it is not one.
boost::json::object JsonObject(const HttpReply& reply);

// The data of each event, in order. Lines end with CRLF, LF or CR; a blank line dispatches the
// event; "data:" lines (one optional space after the colon) are joined with newlines; comments
// (":") and other fields are ignored; an unterminated last line is dropped.
std::vector<std::string> ParseSse(const std::string& stream);

}  // namespace locrit::testing
