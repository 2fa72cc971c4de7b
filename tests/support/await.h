// Await: turn a callback-style asynchronous call into a blocking one, for tests.
//   auto r = Await<Handle>([&](auto done) { manager.Get("a", {}, done); });
#pragma once

#include <functional>
#include <future>

#include "base/status.h"

namespace locrit::testing {

template <typename T>
Result<T> Await(const std::function<void(std::function<void(Result<T>)>)>& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace locrit::testing
