#include "chat/context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace locrit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Message Msg(int64_t seq, std::string id, Role role, std::string content) {
  Message m;
  m.seq = seq;
  m.id = std::move(id);
  m.session_id = "s";
  m.role = role;
  m.content = std::move(content);
  return m;
}

RecalledItem Memory(std::string id, std::string text, int64_t at = 1735718400000) {
  RecalledItem item;
  item.kind = RecalledItem::Kind::kMemory;
  item.id = std::move(id);
  item.text = std::move(text);
  item.at = at;
  return item;
}

RecalledItem OldMessage(std::string id, std::string text) {
  RecalledItem item;
  item.kind = RecalledItem::Kind::kMessage;
  item.id = std::move(id);
  item.text = std::move(text);
  item.at = 1735718400000;
  return item;
}

ContextInput Base() {
  ContextInput input;
  input.locrit_name = "Bob";
  input.description = "Un expert technique.";
  input.new_message_id = "new";
  input.new_message = "Et maintenant ?";
  return input;
}

std::vector<std::string> Roles(const std::vector<ChatMessage>& context) {
  std::vector<std::string> roles;
  for (const ChatMessage& m : context) roles.push_back(m.role);
  return roles;
}

std::vector<std::string> Contents(const std::vector<ChatMessage>& context) {
  std::vector<std::string> contents;
  for (const ChatMessage& m : context) contents.push_back(m.content);
  return contents;
}

struct Case {
  std::string name;
  ContextInput input;
  std::vector<std::string> roles;        // Expected roles, in order.
  std::vector<std::string> contents;     // Expected contents of the non-recall messages ("*": any).
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  {
    Case c{"OnlyTheNewMessage", Base(), {"system", "user"},
           {"Tu es Bob, un Locrit. Un expert technique.", "Et maintenant ?"}};
    cases.push_back(c);
  }
  {
    Case c{"OwnSystemPromptReplacesTheDefault", Base(), {"system", "user"},
           {"Tu parles comme un pirate.", "Et maintenant ?"}};
    c.input.system_prompt = "Tu parles comme un pirate.";
    cases.push_back(c);
  }
  {
    Case c{"NoDescription", Base(), {"system", "user"}, {"Tu es Bob, un Locrit.", "Et maintenant ?"}};
    c.input.description.clear();
    cases.push_back(c);
  }
  {
    Case c{"WindowInChronologicalOrderThenTheNewMessage",
           Base(),
           {"system", "user", "assistant", "user"},
           {"*", "Bonjour", "Salut !", "Et maintenant ?"}};
    c.input.window = {Msg(1, "a", Role::kUser, "Bonjour"), Msg(2, "b", Role::kAssistant, "Salut !")};
    cases.push_back(c);
  }
  {
    // A window that already holds the new message (read after it was saved) must not repeat it.
    Case c{"NewMessageExactlyOnce", Base(), {"system", "user", "user"},
           {"*", "Bonjour", "Et maintenant ?"}};
    c.input.window = {Msg(1, "a", Role::kUser, "Bonjour"),
                      Msg(2, "new", Role::kUser, "Et maintenant ?")};
    cases.push_back(c);
  }
  {
    Case c{"RecalledItemsComeBeforeTheWindow",
           Base(),
           {"system", "system", "user", "user"},
           {"*", "*", "Bonjour", "Et maintenant ?"}};
    c.input.recalled = {Memory("m1", "Alice aime le jazz.")};
    c.input.window = {Msg(1, "a", Role::kUser, "Bonjour")};
    cases.push_back(c);
  }
  {
    // Everything recalled is already in the window or is the new message: no recall message.
    Case c{"RecalledItemsInTheWindowAreDropped", Base(), {"system", "user", "user"},
           {"*", "Bonjour", "Et maintenant ?"}};
    c.input.recalled = {OldMessage("a", "Bonjour"), OldMessage("new", "Et maintenant ?")};
    c.input.window = {Msg(1, "a", Role::kUser, "Bonjour")};
    cases.push_back(c);
  }
  {
    Case c{"NothingFitsAZeroBudget", Base(), {"system", "user"}, {"*", "Et maintenant ?"}};
    c.input.recalled = {Memory("m1", "Alice aime le jazz.")};
    c.input.recall_budget_chars = 0;
    cases.push_back(c);
  }
  return cases;
}

class ContextTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(ContextTableTest, AssemblesInOrder) {
  const Case& c = GetParam();
  const std::vector<ChatMessage> context = AssembleContext(c.input);
  ASSERT_EQ(Roles(context), c.roles);
  const std::vector<std::string> contents = Contents(context);
  for (size_t i = 0; i < c.contents.size(); ++i) {
    if (c.contents[i] != "*") {
      EXPECT_EQ(contents[i], c.contents[i]) << "message " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, ContextTableTest, ::testing::ValuesIn(Cases()),
                         [](const auto& test) { return test.param.name; });

TEST(ContextTest, RecalledItemsAreMarkedDatedAndKeptInTheGivenOrder) {
  ContextInput input = Base();
  input.recalled = {Memory("m1", "Alice aime le jazz.", 1735718400000),
                    OldMessage("old", "Je pars au Japon en train.")};
  const std::vector<ChatMessage> context = AssembleContext(input);
  ASSERT_EQ(context.size(), 3u);
  const std::string& recall = context[1].content;
  EXPECT_THAT(recall, HasSubstr("Souvenirs rappelés"));
  EXPECT_THAT(recall, HasSubstr("[souvenir, 2025-01-01 08:00 UTC] Alice aime le jazz."));
  EXPECT_THAT(recall, HasSubstr("Je pars au Japon en train."));
  EXPECT_LT(recall.find("jazz"), recall.find("Japon"));
}

TEST(ContextTest, BudgetKeepsWholeItemsAndLetsASmallerOneThrough) {
  ContextInput input = Base();
  input.recalled = {Memory("big", std::string(500, 'x')), Memory("small", "court")};
  input.recall_budget_chars = 100;
  const std::vector<ChatMessage> context = AssembleContext(input);
  ASSERT_EQ(context.size(), 3u);
  EXPECT_THAT(context[1].content, Not(HasSubstr("xxxx")));
  EXPECT_THAT(context[1].content, HasSubstr("court"));
}

TEST(ContextTest, BudgetCountsCharactersNotBytes) {
  ContextInput input = Base();
  // 40 characters of two bytes each: fits a 100-character budget with its prefix, not 80 bytes.
  std::string accented;
  for (int i = 0; i < 40; ++i) accented += "é";
  input.recalled = {Memory("m", accented)};
  input.recall_budget_chars = 100;
  EXPECT_EQ(AssembleContext(input).size(), 3u);
}

TEST(ContextTest, DuplicateRecalledIdsAppearOnce) {
  ContextInput input = Base();
  input.recalled = {Memory("m", "une fois"), Memory("m", "une fois")};
  const std::vector<ChatMessage> context = AssembleContext(input);
  ASSERT_EQ(context.size(), 3u);
  const std::string& recall = context[1].content;
  EXPECT_EQ(recall.find("une fois"), recall.rfind("une fois"));
}

TEST(ContextTest, FormatsUtcMinutes) {
  EXPECT_EQ(FormatUtcMinute(0), "1970-01-01 00:00 UTC");
  EXPECT_EQ(FormatUtcMinute(1735718400000 + 59'999), "2025-01-01 08:00 UTC");
}

}  // namespace
}  // namespace locrit
