#include "llm/llm_client.h"

namespace locrit {

LlmCall& LlmCall::operator=(LlmCall&& other) noexcept {
  if (this != &other) {
    Cancel();
    target_ = std::move(other.target_);
  }
  return *this;
}

void LlmCall::Cancel() {
  if (target_ == nullptr) return;
  std::shared_ptr<Target> target = std::move(target_);
  target->Cancel();
}

}  // namespace locrit
