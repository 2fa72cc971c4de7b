// LocritRegistry over real SQLite files in a temporary directory; the name rules as tables.
#include "registry/locrit_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LocritNameTest, ValidNames) {
  for (const char* name : {"Bob Technique", "a", "Élodie", "Ψυχή", "日本語のロクリ", "x-y_z.1",
                           "Bob 🤖"}) {
    EXPECT_THAT(ValidateLocritName(name), IsOk()) << name;
  }
  EXPECT_THAT(ValidateLocritName(std::string(64, 'a')), IsOk());
  std::string sixty_four_accents;
  for (int i = 0; i < 64; ++i) sixty_four_accents += "é";
  EXPECT_THAT(ValidateLocritName(sixty_four_accents), IsOk()) << "counted in characters";
}

TEST(LocritNameTest, InvalidNames) {
  struct Case {
    std::string name;
    const char* why;
  };
  const Case cases[] = {
      {"", "empty"},
      {std::string(65, 'a'), "longer than 64"},
      {"a/b", "'/'"},
      {"..\\x", "'/'"},
      {"../etc", "'/'"},
      {"bob\nx", "control"},
      {std::string("bob\0x", 5), "control"},
      {"bob\x7f", "control"},
      {"bob\xc2\x85", "control"},  // U+0085, a C1 control.
      {" bob", "space"},
      {"bob ", "space"},
      {"bob\xff", "UTF-8"},
      {"\xc0\xaf", "UTF-8"},  // Overlong '/'.
  };
  for (const Case& c : cases) {
    const Status status = ValidateLocritName(c.name);
    EXPECT_THAT(status, StatusIs(StatusCode::kInvalidArgument)) << c.name;
    EXPECT_THAT(status.message(), HasSubstr(c.why)) << c.name;
  }
}

TEST(LocritNameTest, KeyFoldsCase) {
  EXPECT_EQ(LocritNameKey("Bob Technique"), LocritNameKey("bob TECHNIQUE"));
  EXPECT_EQ(LocritNameKey("ÉLODIE"), LocritNameKey("élodie"));
  EXPECT_EQ(LocritNameKey("ŁUKASZ"), LocritNameKey("łukasz"));
  EXPECT_EQ(LocritNameKey("ΨΥΧΉ"), LocritNameKey("ψυχή"));
  EXPECT_EQ(LocritNameKey("БОРИС"), LocritNameKey("борис"));
  EXPECT_NE(LocritNameKey("Bob"), LocritNameKey("Bob "));
  EXPECT_NE(LocritNameKey("e"), LocritNameKey("é"));
}

TEST(LocritNameTest, SlugBase) {
  EXPECT_EQ(SlugBase("Bob Technique"), "bob-technique");
  EXPECT_EQ(SlugBase("Élodie l'Ingénieure"), "elodie-l-ingenieure");
  EXPECT_EQ(SlugBase("  --A__B--  "), "a__b");
  EXPECT_EQ(SlugBase("..\\..\\etc"), "etc");
  EXPECT_EQ(SlugBase("日本語"), "");
  EXPECT_EQ(SlugBase(std::string(64, 'x')).size(), 40u);
  EXPECT_TRUE(IsValidSlug("bob-technique"));
  EXPECT_FALSE(IsValidSlug(""));
  EXPECT_FALSE(IsValidSlug(".."));
  EXPECT_FALSE(IsValidSlug("Bob"));
}

class LocritRegistryTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<LocritRegistry>> Open() {
    RegistryOptions options;
    options.path = dir_.File("registry.db");
    options.clock = &clock_;
    options.locrits_dir = dir_.File("locrits");
    return LocritRegistry::Open(options);
  }

  static LocritConfig Named(std::string name) {
    LocritConfig config;
    config.name = std::move(name);
    config.description = "un Locrit de test";
    return config;
  }

  TempDir dir_;
  FakeClock clock_{1'700'000'000'000'000};
};

TEST_F(LocritRegistryTest, CreateGetListAndReopen) {
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    EXPECT_EQ((*registry)->Count(), 0u);
    LocritConfig bob = Named("Bob Technique");
    bob.system_prompt = "Tu es Bob.";
    bob.model = "llama3.2";
    bob.embedding_model = "nomic-embed-text";
    bob.llm = {LocritProvider::kOllama, "http://gpu:11434"};
    bob.open_to.internet = true;
    bob.access_to.full_memory = true;
    bob.memory = {100, 7};
    bob.slug = "ignored";
    auto created = (*registry)->Create(bob);
    ASSERT_THAT(created, IsOk());
    EXPECT_EQ(created->slug, "bob-technique");
    EXPECT_EQ(created->created_at, 1'700'000'000'000);
    EXPECT_EQ(created->updated_at, created->created_at);
    clock_.AdvanceMillis(5);
    ASSERT_THAT((*registry)->Create(Named("Ψυχή")), IsOk());
  }
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  auto bob = (*registry)->Get("BOB technique");
  ASSERT_THAT(bob, IsOk());
  EXPECT_EQ(bob->name, "Bob Technique");
  EXPECT_EQ(bob->system_prompt, "Tu es Bob.");
  EXPECT_EQ(bob->model, "llama3.2");
  EXPECT_EQ(bob->embedding_model, "nomic-embed-text");
  EXPECT_EQ(bob->llm.provider, LocritProvider::kOllama);
  EXPECT_EQ(bob->llm.url, "http://gpu:11434");
  EXPECT_TRUE(bob->open_to.internet);
  EXPECT_TRUE(bob->open_to.humans);
  EXPECT_TRUE(bob->access_to.full_memory);
  EXPECT_EQ(bob->memory.max_messages, 100);
  EXPECT_EQ(bob->memory.context_messages, 7);
  auto psyche = (*registry)->Get("ΨΥΧΉ");
  ASSERT_THAT(psyche, IsOk());
  EXPECT_EQ(psyche->system_prompt, std::nullopt);
  EXPECT_EQ(psyche->embedding_model, std::nullopt);
  EXPECT_EQ(psyche->llm.provider, LocritProvider::kRecall);
  EXPECT_EQ(psyche->llm.url, std::nullopt);
  EXPECT_EQ(psyche->slug.size(), 8u) << "no ASCII letters: the hash alone";
  EXPECT_TRUE(IsValidSlug(psyche->slug));
  std::vector<std::string> names;
  for (const auto& c : (*registry)->List()) names.push_back(c.name);
  EXPECT_THAT(names, ElementsAre("Bob Technique", "Ψυχή"));
}

TEST_F(LocritRegistryTest, NamesAreUniqueCaseInsensitively) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  ASSERT_THAT((*registry)->Create(Named("Élodie")), IsOk());
  auto again = (*registry)->Create(Named("éLODIE"));
  EXPECT_THAT(again, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(again.status().message(), HasSubstr("Élodie"));
  EXPECT_EQ((*registry)->Count(), 1u);
}

TEST_F(LocritRegistryTest, SlugsGetAHashWhenTakenOrOnDisk) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  auto first = (*registry)->Create(Named("Bob Technique"));
  auto second = (*registry)->Create(Named("bob-technique"));
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(first->slug, "bob-technique");
  EXPECT_THAT(second->slug, ::testing::StartsWith("bob-technique-"));
  EXPECT_EQ(second->slug.size(), std::string("bob-technique-").size() + 8);

  // Memory left behind by a deleted Locrit is never handed to a new one.
  std::filesystem::create_directories(dir_.path() / "locrits" / "alice");
  auto alice = (*registry)->Create(Named("Alice"));
  ASSERT_THAT(alice, IsOk());
  EXPECT_NE(alice->slug, "alice");
  EXPECT_THAT(alice->slug, ::testing::StartsWith("alice-"));
}

TEST_F(LocritRegistryTest, InvalidDefinitionsAreRefusedAndNothingIsStored) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  EXPECT_THAT((*registry)->Create(Named("a/b")), StatusIs(StatusCode::kInvalidArgument));
  LocritConfig bad = Named("ok");
  bad.memory.context_messages = -1;
  EXPECT_THAT((*registry)->Create(bad), StatusIs(StatusCode::kInvalidArgument));
  bad = Named("ok");
  bad.description = std::string(4097, 'd');
  EXPECT_THAT((*registry)->Create(bad), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ((*registry)->Count(), 0u);
  RawSql sql(dir_.File("registry.db"));
  EXPECT_EQ(sql.Text("SELECT count(*) FROM locrits"), "0");
}

TEST_F(LocritRegistryTest, GetUnknownIsNotFound) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  EXPECT_THAT((*registry)->Get("nobody"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT((*registry)->Get("bad\xff"), StatusIs(StatusCode::kNotFound));
}

TEST_F(LocritRegistryTest, UpdateChangesFieldsButNeverTheSlugOrCreationTime) {
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    auto bob = (*registry)->Create(Named("Bob"));
    ASSERT_THAT(bob, IsOk());
    clock_.AdvanceMillis(1000);
    auto updated = (*registry)->Update("BOB", [](LocritConfig& c) {
      c.description = "nouvelle description";
      c.system_prompt = "Tu es Bob.";
      c.llm = {LocritProvider::kOpenAi, "https://llm.example/v1"};
      c.model = "gpt-x";
      c.open_to.internet = true;
      c.memory.context_messages = 3;
      c.slug = "elsewhere";     // Ignored: the memory never moves.
      c.created_at = 1;         // Ignored.
      return Status::Ok();
    });
    ASSERT_THAT(updated, IsOk());
    EXPECT_EQ(updated->slug, bob->slug);
    EXPECT_EQ(updated->created_at, bob->created_at);
    EXPECT_EQ(updated->updated_at, bob->created_at + 1000);
  }
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  auto bob = (*registry)->Get("bob");
  ASSERT_THAT(bob, IsOk());
  EXPECT_EQ(bob->description, "nouvelle description");
  EXPECT_EQ(bob->system_prompt, "Tu es Bob.");
  EXPECT_EQ(bob->llm.provider, LocritProvider::kOpenAi);
  EXPECT_EQ(bob->llm.url, "https://llm.example/v1");
  EXPECT_EQ(bob->model, "gpt-x");
  EXPECT_TRUE(bob->open_to.internet);
  EXPECT_EQ(bob->memory.context_messages, 3);
  EXPECT_EQ(bob->slug, "bob");
}

TEST_F(LocritRegistryTest, AFailedOrInvalidUpdateChangesNothing) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  ASSERT_THAT((*registry)->Create(Named("Bob")), IsOk());
  auto refused = (*registry)->Update("Bob", [](LocritConfig& c) {
    c.description = "à moitié";
    return InvalidArgumentError("model must be a string");
  });
  EXPECT_THAT(refused, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(refused.status().message(), "model must be a string");
  auto invalid = (*registry)->Update("Bob", [](LocritConfig& c) {
    c.description = "à moitié";
    c.memory.context_messages = 5000;
    return Status::Ok();
  });
  EXPECT_THAT(invalid, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ((*registry)->Get("Bob")->description, "un Locrit de test");
  EXPECT_EQ(RawSql(dir_.File("registry.db")).Text("SELECT description FROM locrits"),
            "un Locrit de test");
  EXPECT_THAT((*registry)->Update("Nobody", [](LocritConfig&) { return Status::Ok(); }),
              StatusIs(StatusCode::kNotFound));
}

TEST_F(LocritRegistryTest, RenameKeepsTheSlugAndRefusesATakenName) {
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    auto bob = (*registry)->Create(Named("Bob Technique"));
    ASSERT_THAT(bob, IsOk());
    ASSERT_THAT((*registry)->Create(Named("Alice")), IsOk());

    auto renamed = (*registry)->Rename("bob technique", "Robert");
    ASSERT_THAT(renamed, IsOk());
    EXPECT_EQ(renamed->name, "Robert");
    EXPECT_EQ(renamed->slug, "bob-technique") << "the memory directory does not move";
    EXPECT_THAT((*registry)->Get("Bob Technique"), StatusIs(StatusCode::kNotFound));

    auto taken = (*registry)->Rename("Robert", "ALICE");
    EXPECT_THAT(taken, StatusIs(StatusCode::kAlreadyExists));
    EXPECT_THAT(taken.status().message(), HasSubstr("Alice"));
    EXPECT_THAT((*registry)->Rename("Robert", "a/b"), StatusIs(StatusCode::kInvalidArgument));
    EXPECT_THAT((*registry)->Rename("Robert", ""), StatusIs(StatusCode::kInvalidArgument));
    // A change of case only is the same key: allowed.
    ASSERT_THAT((*registry)->Rename("Robert", "ROBERT"), IsOk());
    EXPECT_EQ((*registry)->Count(), 2u);
    // The old name is free again, for a new Locrit with its own memory.
    auto fresh = (*registry)->Create(Named("Bob Technique"));
    ASSERT_THAT(fresh, IsOk());
    EXPECT_NE(fresh->slug, "bob-technique");
  }
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  auto robert = (*registry)->Get("robert");
  ASSERT_THAT(robert, IsOk());
  EXPECT_EQ(robert->name, "ROBERT");
  EXPECT_EQ(robert->slug, "bob-technique");
}

TEST_F(LocritRegistryTest, ToggleFlipsActiveDurably) {
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    ASSERT_THAT((*registry)->Create(Named("Bob")), IsOk());
    auto off = (*registry)->Toggle("bob");
    ASSERT_THAT(off, IsOk());
    EXPECT_FALSE(off->active);
    EXPECT_FALSE((*registry)->Get("Bob")->active);
  }
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  EXPECT_FALSE((*registry)->Get("Bob")->active);
  auto on = (*registry)->Toggle("Bob");
  ASSERT_THAT(on, IsOk());
  EXPECT_TRUE(on->active);
  EXPECT_THAT((*registry)->Toggle("Nobody"), StatusIs(StatusCode::kNotFound));
}

TEST_F(LocritRegistryTest, DeleteRemovesTheLocritAndRetiresItsSlugForGood) {
  std::string old_slug;
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    auto bob = (*registry)->Create(Named("Bob"));
    ASSERT_THAT(bob, IsOk());
    old_slug = bob->slug;
    auto deleted = (*registry)->Delete("BOB");
    ASSERT_THAT(deleted, IsOk());
    EXPECT_EQ(deleted->slug, old_slug);
    EXPECT_THAT((*registry)->Get("Bob"), StatusIs(StatusCode::kNotFound));
    EXPECT_EQ((*registry)->Count(), 0u);
    EXPECT_THAT((*registry)->Delete("Bob"), StatusIs(StatusCode::kNotFound));
    // No directory was ever created for it, yet the new Bob gets another slug.
    auto again = (*registry)->Create(Named("Bob"));
    ASSERT_THAT(again, IsOk());
    EXPECT_NE(again->slug, old_slug);
    ASSERT_THAT((*registry)->Delete("Bob"), IsOk());
  }
  RawSql sql(dir_.File("registry.db"));
  EXPECT_EQ(sql.Text("SELECT count(*) FROM locrits"), "0");
  EXPECT_EQ(sql.Text("SELECT count(*) FROM retired_slugs"), "2");
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  auto third = (*registry)->Create(Named("Bob"));
  ASSERT_THAT(third, IsOk());
  EXPECT_NE(third->slug, old_slug) << "retired slugs survive a reopen";
}

TEST_F(LocritRegistryTest, AFileThatIsNotARegistryIsReportedNeverReplaced) {
  {
    std::ofstream out(dir_.File("registry.db"), std::ios::binary);
    out << std::string(8192, 'x');
  }
  EXPECT_THAT(Open(), StatusIs(StatusCode::kCorruption));
  EXPECT_EQ(std::filesystem::file_size(dir_.File("registry.db")), 8192u);
}

TEST_F(LocritRegistryTest, AnEmptyEmbeddingModelIsRefused) {
  auto registry = Open();
  ASSERT_THAT(registry, IsOk());
  LocritConfig bad = Named("ok");
  bad.embedding_model = "";
  EXPECT_THAT((*registry)->Create(bad), StatusIs(StatusCode::kInvalidArgument));
}

// A registry.db written by the first schema (no embedding_model column, no retired slugs) opens,
// keeps its Locrits, and is migrated forward for good.
TEST_F(LocritRegistryTest, AVersion1RegistryIsMigratedForward) {
  {
    RawSql sql(dir_.File("registry.db"));
    sql.Exec(R"sql(
CREATE TABLE locrits(
  slug TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL, system_prompt TEXT, model TEXT NOT NULL, llm_provider TEXT NOT NULL,
  llm_url TEXT, active INTEGER NOT NULL, public_address TEXT, open_humans INTEGER NOT NULL,
  open_locrits INTEGER NOT NULL, open_invitations INTEGER NOT NULL,
  open_internet INTEGER NOT NULL, open_platform INTEGER NOT NULL, access_logs INTEGER NOT NULL,
  access_quick_memory INTEGER NOT NULL, access_full_memory INTEGER NOT NULL,
  access_llm_info INTEGER NOT NULL, max_messages INTEGER NOT NULL,
  context_messages INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
) STRICT;
INSERT INTO locrits VALUES('old', 'Old', 'old', 'from v1', NULL, 'llama3.2', 'ollama', NULL, 1,
  NULL, 1, 1, 1, 0, 0, 1, 1, 0, 1, 5000, 20, 1, 1);
PRAGMA user_version=1;
)sql");
  }
  {
    auto registry = Open();
    ASSERT_THAT(registry, IsOk());
    auto old = (*registry)->Get("old");
    ASSERT_THAT(old, IsOk());
    EXPECT_EQ(old->model, "llama3.2");
    EXPECT_EQ(old->embedding_model, std::nullopt);
    LocritConfig hybrid = Named("Hybrid");
    hybrid.embedding_model = "nomic-embed-text";
    ASSERT_THAT((*registry)->Create(hybrid), IsOk());
  }
  RawSql sql(dir_.File("registry.db"));
  EXPECT_EQ(sql.Text("PRAGMA user_version"), "3");
  EXPECT_EQ(sql.Text("SELECT count(*) FROM retired_slugs"), "0") << "migration 3 ran too";
  EXPECT_EQ(sql.Text("SELECT embedding_model FROM locrits WHERE name = 'Hybrid'"),
            "nomic-embed-text");
  auto registry = Open();
  ASSERT_THAT(registry, IsOk()) << "a migrated registry opens again without migrating twice";
  EXPECT_EQ((*registry)->Count(), 2u);
  EXPECT_EQ((*registry)->Get("hybrid")->embedding_model, "nomic-embed-text");
}

TEST_F(LocritRegistryTest, ANewerSchemaIsRefused) {
  { RawSql(dir_.File("registry.db")).Exec("PRAGMA user_version=9"); }
  EXPECT_THAT(Open(), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace locrit
