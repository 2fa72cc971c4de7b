// Messages and sessions: SaveMessage's single transaction, history order, CRUD and not-found paths.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class MessagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = harness_.Open();
    ASSERT_THAT(store, IsOk());
    store_ = std::move(store).value();
  }

  SavedMessage Save(const std::string& session, const std::string& content,
                    Role role = Role::kUser) {
    NewMessage m = StoreHarness::UserMessage(session, content);
    m.role = role;
    if (role == Role::kAssistant) m.user_id = "locrit";
    auto saved = store_->SaveMessage(m);
    EXPECT_THAT(saved, IsOk());
    return saved.ok() ? *saved : SavedMessage{};
  }

  std::vector<std::string> Contents(const std::vector<Message>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages) out.push_back(m.content);
    return out;
  }

  StoreHarness harness_;
  std::unique_ptr<MemoryStore> store_;
};

TEST_F(MessagesTest, SaveWritesNodeAndAllEdgesTogether) {
  const SavedMessage first = Save("s1", "hello");
  harness_.clock().AdvanceMillis(3000);
  const SavedMessage reply = Save("s1", "hi there", Role::kAssistant);

  EXPECT_EQ(first.seq + 1, reply.seq);
  EXPECT_FALSE(first.responds_to.has_value());
  EXPECT_EQ(reply.responds_to, first.id);
  EXPECT_EQ(CountRows(harness_.path(), "sent"), 2);
  EXPECT_EQ(CountRows(harness_.path(), "part_of"), 2);
  EXPECT_EQ(CountRows(harness_.path(), "responds_to"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "users"), 2);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());

  ASSERT_OK_AND_ASSIGN(Message got, store_->GetMessage(reply.id));
  EXPECT_EQ(got.content, "hi there");
  EXPECT_EQ(got.role, Role::kAssistant);
  EXPECT_EQ(got.session_id, "s1");
  EXPECT_EQ(got.user_id, "locrit");
  EXPECT_EQ(got.status, MessageStatus::kOk);
  EXPECT_EQ(got.created_at, harness_.clock().NowMillis());

  ASSERT_OK_AND_ASSIGN(Session session, store_->GetSession("s1"));
  EXPECT_EQ(session.message_count, 2);
  EXPECT_EQ(session.user_id, "user-alice");
  EXPECT_EQ(session.last_activity, harness_.clock().NowMillis());
}

TEST_F(MessagesTest, ExplicitRespondsToAndMetadata) {
  const SavedMessage a = Save("s1", "a");
  Save("s1", "b");
  NewMessage m = StoreHarness::UserMessage("s1", "c");
  m.responds_to = a.id;
  m.metadata = R"({"model":"llama3.2","tokens":12})";
  m.status = MessageStatus::kUnanswered;
  ASSERT_OK_AND_ASSIGN(SavedMessage c, store_->SaveMessage(m));
  EXPECT_EQ(c.responds_to, a.id);
  ASSERT_OK_AND_ASSIGN(Message got, store_->GetMessage(c.id));
  EXPECT_EQ(got.metadata, m.metadata);
  EXPECT_EQ(got.status, MessageStatus::kUnanswered);

  m.responds_to = "no-such-message";
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kNotFound));
}

TEST_F(MessagesTest, RejectsInvalidInputWithPreciseErrors) {
  NewMessage m = StoreHarness::UserMessage("", "x");
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kInvalidArgument));
  m = StoreHarness::UserMessage("s", "x", "");
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kInvalidArgument));
  m = StoreHarness::UserMessage("s", "bad \xff utf8");
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kInvalidArgument));
  m = StoreHarness::UserMessage("s", "x");
  m.metadata = "[1,2]";
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kInvalidArgument));
  m.metadata = "{not json";
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kInvalidArgument));
  // Nothing of the failed saves is left behind.
  EXPECT_EQ(CountRows(harness_.path(), "messages"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "sessions"), 0);
  EXPECT_EQ(CountRows(harness_.path(), "users"), 0);
}

TEST_F(MessagesTest, DuplicateExplicitIdIsAlreadyExists) {
  NewMessage m = StoreHarness::UserMessage("s", "x");
  m.id = "fixed-id";
  ASSERT_THAT(store_->SaveMessage(m), IsOk());
  EXPECT_THAT(store_->SaveMessage(m), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(CountRows(harness_.path(), "messages"), 1);
}

TEST_F(MessagesTest, UnicodeEmptyHostileAndHugeContentRoundTrip) {
  const std::vector<std::string> contents = {
      "",
      "éléphant 🐘 日本語 Ünïcödé",
      "'; DROP TABLE messages; --",
      "\" OR 1=1 -- NEAR(a b) * ^ : {col}",
      std::string("nul\0inside", 10),
      std::string(1 << 20, 'x'),
  };
  for (const auto& c : contents) {
    const SavedMessage saved = Save("s", c);
    ASSERT_OK_AND_ASSIGN(Message got, store_->GetMessage(saved.id));
    EXPECT_EQ(got.content, c);
  }
  EXPECT_EQ(CountRows(harness_.path(), "messages"), static_cast<int64_t>(contents.size()));
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(MessagesTest, SameMicrosecondSavesGetDistinctIdsAndOrder) {
  // The fake clock never moves: every save happens in the same microsecond.
  std::vector<SavedMessage> saved;
  for (int i = 0; i < 500; ++i) saved.push_back(Save("s", std::to_string(i)));
  for (size_t i = 1; i < saved.size(); ++i) {
    EXPECT_NE(saved[i].id, saved[i - 1].id);
    EXPECT_GT(saved[i].seq, saved[i - 1].seq);
  }
  ASSERT_OK_AND_ASSIGN(auto history, store_->History({"s", 3, {}}));
  EXPECT_THAT(Contents(history), ElementsAre("497", "498", "499"));
}

TEST_F(MessagesTest, HistoryIsNewestNInChronologicalOrderWithCursor) {
  for (int i = 0; i < 30; ++i) Save("s", std::to_string(i));
  ASSERT_OK_AND_ASSIGN(auto newest, store_->History({"s", 5, {}}));
  EXPECT_THAT(Contents(newest), ElementsAre("25", "26", "27", "28", "29"));
  ASSERT_OK_AND_ASSIGN(auto page, store_->History({"s", 5, newest.front().seq}));
  EXPECT_THAT(Contents(page), ElementsAre("20", "21", "22", "23", "24"));
  ASSERT_OK_AND_ASSIGN(auto all, store_->History({"s", 1000, {}}));
  EXPECT_EQ(all.size(), 30u);
}

TEST_F(MessagesTest, HistoryOrdersBySeqNotTimestamp) {
  NewMessage m = StoreHarness::UserMessage("s", "later clock first");
  m.created_at = 2'000'000'000'000;
  ASSERT_THAT(store_->SaveMessage(m), IsOk());
  m = StoreHarness::UserMessage("s", "earlier clock second");
  m.created_at = 1'000;
  ASSERT_THAT(store_->SaveMessage(m), IsOk());
  ASSERT_OK_AND_ASSIGN(auto history, store_->History({"s", 10, {}}));
  EXPECT_THAT(Contents(history), ElementsAre("later clock first", "earlier clock second"));
}

TEST_F(MessagesTest, HistoryAfterTenThousandSavesAcrossSessions) {
  std::mt19937 rng(1234);
  std::map<std::string, std::vector<std::string>> expected;
  for (int i = 0; i < 10000; ++i) {
    const std::string session = "s" + std::to_string(rng() % 7);
    const std::string content = "m" + std::to_string(i);
    NewMessage m = StoreHarness::UserMessage(session, content);
    ASSERT_THAT(store_->SaveMessage(m), IsOk());
    expected[session].push_back(content);
    if (i % 97 == 0) harness_.clock().AdvanceMicros(rng() % 3);  // Ties and steps.
  }
  for (const auto& [session, contents] : expected) {
    ASSERT_OK_AND_ASSIGN(auto history, store_->History({session, 20, {}}));
    const std::vector<std::string> newest(contents.end() - 20, contents.end());
    EXPECT_EQ(Contents(history), newest) << session;
  }
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(MessagesTest, EditKeepsSearchableContentInSync) {
  const SavedMessage saved = Save("s", "before");
  ASSERT_THAT(store_->EditMessage(saved.id, "after"), IsOk());
  ASSERT_OK_AND_ASSIGN(Message got, store_->GetMessage(saved.id));
  EXPECT_EQ(got.content, "after");
  EXPECT_THAT(store_->EditMessage("missing", "x"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->EditMessage(saved.id, "\xfe"), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_THAT(store_->SetMessageStatus(saved.id, MessageStatus::kIncomplete), IsOk());
  ASSERT_OK_AND_ASSIGN(got, store_->GetMessage(saved.id));
  EXPECT_EQ(got.status, MessageStatus::kIncomplete);
  EXPECT_THAT(store_->SetMessageStatus("missing", MessageStatus::kOk),
              StatusIs(StatusCode::kNotFound));
}

TEST_F(MessagesTest, DeleteMessageRemovesItsEdges) {
  const SavedMessage a = Save("s", "a");
  const SavedMessage b = Save("s", "b");
  ASSERT_THAT(store_->DeleteMessage(a.id), IsOk());
  EXPECT_THAT(store_->GetMessage(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->DeleteMessage(a.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "responds_to"), 0);
  ASSERT_OK_AND_ASSIGN(Session session, store_->GetSession("s"));
  EXPECT_EQ(session.message_count, 1);
  EXPECT_THAT(store_->GetMessage(b.id), IsOk());
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
}

TEST_F(MessagesTest, SessionsListGetDelete) {
  Save("old", "1");
  harness_.clock().AdvanceMillis(10);
  Save("new", "2");
  Save("new", "3");
  ASSERT_OK_AND_ASSIGN(auto sessions, store_->ListSessions(10));
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].id, "new");
  EXPECT_EQ(sessions[0].message_count, 2);
  EXPECT_EQ(sessions[1].id, "old");

  ASSERT_THAT(store_->DeleteSession("new"), IsOk());
  EXPECT_THAT(store_->GetSession("new"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->DeleteSession("new"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store_->History({"new", 10, {}}), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness_.path(), "messages"), 1);
  EXPECT_EQ(CountRows(harness_.path(), "part_of"), 1);
  EXPECT_THAT(FindBrokenInvariants(harness_.path()), IsEmpty());
  EXPECT_THAT(store_->GetUser("user-alice"), IsOk());
  EXPECT_THAT(store_->GetUser("nobody"), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace locrit

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;

TEST(BatchTest, AFailingWriteInABatchUndoesOnlyItself) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->BeginBatch(), IsOk());
  EXPECT_TRUE(store->InBatch());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "one")), IsOk());
  NewMessage bad = StoreHarness::UserMessage("s", "two");
  bad.responds_to = "missing";  // Fails after the user and session upserts ran.
  EXPECT_THAT(store->SaveMessage(bad), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store->Atomically([&]() -> Status {
    RETURN_IF_ERROR(store->SaveMessage(StoreHarness::UserMessage("other", "three")).status());
    return InvalidArgumentError("changed my mind");
  }), StatusIs(StatusCode::kInvalidArgument));
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "four")), IsOk());
  EXPECT_THAT(store->BeginBatch(), StatusIs(StatusCode::kFailedPrecondition));
  ASSERT_THAT(store->CommitBatch(), IsOk());
  EXPECT_FALSE(store->InBatch());

  ASSERT_OK_AND_ASSIGN(auto history, store->History({"s", 10, {}}));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].content, "one");
  EXPECT_EQ(history[1].content, "four");
  EXPECT_THAT(store->GetSession("other"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness.path(), "messages"), 2);
  EXPECT_TRUE(FindBrokenInvariants(harness.path()).empty());
}

TEST(BatchTest, RolledBackBatchLeavesNothing) {
  StoreHarness harness;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->BeginBatch(), IsOk());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", "one")), IsOk());
  store->RollbackBatch();
  EXPECT_EQ(CountRows(harness.path(), "messages"), 0);
  EXPECT_THAT(store->CommitBatch(), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace locrit
