// ConversationStore over real SQLite files in a temporary directory.
#include "registry/conversation_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/fake_clock.h"
#include "tests/support/matchers.h"
#include "tests/support/raw_sql.h"
#include "tests/support/temp_dir.h"

namespace locrit {
namespace {

using ::locrit::testing::FakeClock;
using ::locrit::testing::IsOk;
using ::locrit::testing::RawSql;
using ::locrit::testing::StatusIs;
using ::locrit::testing::TempDir;
using ::testing::HasSubstr;

class ConversationStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<ConversationStore> Open() {
    ConversationStoreOptions options;
    options.path = dir_.File("conversations.db");
    options.clock = &clock_;
    auto store = ConversationStore::Open(options);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(ConversationStoreTest, CreateGiveUnguessableIdsThatAreTheirSessions) {
  auto store = Open();
  auto a = store->Create("bob", "alice", R"({"topic":"vélo"})");
  auto b = store->Create("bob", "alice", "");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->id.size(), 32u);
  EXPECT_EQ(a->id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(a->session_id, a->id);
  EXPECT_EQ(b->metadata, "{}");
  EXPECT_EQ(a->message_count, 0);
  EXPECT_EQ(store->Get(a->id)->metadata, R"({"topic":"vélo"})");
  EXPECT_EQ(store->Get("nope"), std::nullopt);
}

TEST_F(ConversationStoreTest, MetadataIsBounded) {
  auto store = Open();
  auto created =
      store->Create("bob", "u", std::string(ConversationStore::kMaxMetadataBytes + 1, 'x'));
  EXPECT_THAT(created, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(created.status().message(), HasSubstr("metadata"));
}

TEST_F(ConversationStoreTest, RecordMessagesCountsAndMovesActivity) {
  auto store = Open();
  auto c = store->Create("bob", "u", "").value();
  clock_.AdvanceMillis(5'000);
  auto counted = store->RecordMessages(c.id, 2);
  ASSERT_THAT(counted, IsOk());
  EXPECT_EQ(counted->message_count, 2);
  EXPECT_EQ(counted->last_activity, c.created_at + 5'000);
  EXPECT_EQ(store->RecordMessages(c.id, 1)->message_count, 3);
  EXPECT_THAT(store->RecordMessages("missing", 2), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(store->Get("missing"), std::nullopt) << "a failed count creates nothing";
}

TEST_F(ConversationStoreTest, ListFiltersAndOrdersByNewestActivity) {
  auto store = Open();
  const auto first = store->Create("bob", "alice", "").value();
  clock_.AdvanceMillis(10);
  const auto second = store->Create("bob", "carol", "").value();
  clock_.AdvanceMillis(10);
  const auto third = store->Create("eve", "alice", "").value();
  clock_.AdvanceMillis(10);
  ASSERT_THAT(store->RecordMessages(first.id, 2), IsOk());  // Now the most recent.

  auto filter = [](std::optional<std::string> user, std::optional<std::string> slug, int limit) {
    ConversationFilter f;
    f.user_id = std::move(user);
    f.locrit_slug = std::move(slug);
    f.limit = limit;
    return f;
  };
  auto ids = [](const std::vector<Conversation>& list) {
    std::vector<std::string> out;
    for (const Conversation& c : list) out.push_back(c.id);
    return out;
  };
  EXPECT_EQ(ids(store->List({})), (std::vector{first.id, third.id, second.id}));
  EXPECT_EQ(ids(store->List(filter("alice", {}, 50))), (std::vector{first.id, third.id}));
  EXPECT_EQ(ids(store->List(filter({}, "bob", 50))), (std::vector{first.id, second.id}));
  EXPECT_EQ(ids(store->List(filter("alice", "eve", 50))),
            (std::vector{third.id}));
  EXPECT_EQ(ids(store->List(filter({}, {}, 1))), (std::vector{first.id}));
  EXPECT_EQ(store->List(filter({}, {}, -5)).size(), 1u) << "limits are clamped";
}

TEST_F(ConversationStoreTest, EverythingSurvivesAReopenAndDeleteIsDurable) {
  std::string kept, deleted;
  {
    auto store = Open();
    kept = store->Create("bob", "alice", R"({"a":1})").value().id;
    deleted = store->Create("bob", "alice", "").value().id;
    ASSERT_THAT(store->RecordMessages(kept, 4), IsOk());
    ASSERT_THAT(store->Delete(deleted), IsOk());
    EXPECT_THAT(store->Delete(deleted), StatusIs(StatusCode::kNotFound));
  }
  auto store = Open();
  ASSERT_TRUE(store->Get(kept).has_value());
  EXPECT_EQ(store->Get(kept)->message_count, 4);
  EXPECT_EQ(store->Get(kept)->user_id, "alice");
  EXPECT_EQ(store->Get(kept)->metadata, R"({"a":1})");
  EXPECT_EQ(store->Get(deleted), std::nullopt);
}

TEST_F(ConversationStoreTest, RefusesNewerAndForeignFilesWithoutReplacingThem) {
  { Open(); }
  RawSql(dir_.File("conversations.db")).Exec("PRAGMA user_version=7");
  ConversationStoreOptions options;
  options.path = dir_.File("conversations.db");
  options.clock = &clock_;
  auto newer = ConversationStore::Open(options);
  EXPECT_THAT(newer, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(newer.status().message(), HasSubstr("newer"));

  options.path = dir_.File("garbage.db");
  {
    std::ofstream out(options.path, std::ios::binary);
    out << std::string(8192, 'x');
  }
  EXPECT_THAT(ConversationStore::Open(options), StatusIs(StatusCode::kCorruption));
  std::ifstream in(options.path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, std::string(8192, 'x')) << "a damaged file is never replaced";
}

}  // namespace
}  // namespace locrit
