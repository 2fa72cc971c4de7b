// What the benchmarks share: the generated words, dying on a setup failure, per-operation
// latency percentiles. Header-only: each benchmark is one translation unit.
#pragma once

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/memory_store.h"

namespace locrit::bench {

using SteadyClock = std::chrono::steady_clock;
// French and English words, the mix of the Kuzu export fixture; accented words exercise the
// tokenizer's diacritic folding on both sides.
constexpr std::string_view kVocabulary[] = {
    "bonjour",   "salut",     "merci",       "hello",        "thanks",    "please",
    "réponse",   "answer",    "question",    "pourquoi",     "why",       "comment",
    "how",       "quand",     "when",        "où",           "where",     "what",
    "toujours",  "always",    "jamais",      "never",        "demain",    "tomorrow",
    "hier",      "yesterday", "aujourd'hui", "today",        "jardin",    "garden",
    "cuisine",   "cooking",   "recette",     "recipe",       "pluie",     "rain",
    "soleil",    "sun",       "météo",       "weather",      "voyage",    "travel",
    "train",     "plane",     "mountain",    "montagne",     "river",     "rivière",
    "city",      "ville",     "musique",     "music",        "film",      "movie",
    "livre",     "book",      "chien",       "chat",         "family",    "famille",
    "friend",    "ami",       "birthday",    "anniversaire", "réunion",   "meeting",
    "projet",    "project",   "travail",     "work",         "budget",    "ticket",
    "plan",      "note",      "list",        "reminder",     "souvenir",  "memory",
    "mémoire",   "idée",      "idea",        "graph",        "node",      "edge",
    "query",     "database",  "session",     "user",         "assistant", "locrit",
    "python",    "rust",      "javascript",  "coffee",       "café",      "tea",
    "thé",       "bread",     "pain",        "cheese",       "fromage",   "maybe",
    "peut-être", "vraiment",  "really",      "beaucoup",     "much",      "très",
    "very",      "encore",    "again",       "donc",         "alors",     "mais",
    "but",       "because",   "car",         "avec",         "with",      "pour",
    "for",       "dans",      "sur",         "nous",         "vous",      "elle",
    "il",        "je",        "tu",          "est",          "suis",      "the",
    "and",       "or",        "été",         "hiver",        "winter",    "printemps",
    "spring",    "automne",   "autumn",      "école",        "school",    "élève",
    "student",   "santé",     "health",      "médecin",      "doctor",    "fenêtre",
    "window",    "château",   "castle",      "forêt",        "forest",    "lac",
    "lake",      "mer",       "sea",         "plage",        "beach",     "vélo",
    "bike",      "voiture",   "automobile",  "gare",         "station",   "marché",
    "market",    "fraise",    "strawberry",  "pomme",        "apple",     "légume",
    "vegetable", "fête",      "party",       "cadeau",       "gift",      "chanson",
    "song",      "guitare",   "guitar",      "piano",        "danse",     "dance",
    "photo",     "picture",   "ordinateur",  "computer",     "téléphone", "phone",
    "courriel",  "email",     "rendez-vous", "appointment",  "semaine",   "week",
    "mois",      "month",     "année",       "year",         "matin",     "morning",
    "soir",      "evening",   "nuit",        "night"};
constexpr int kVocabularySize = static_cast<int>(std::size(kVocabulary));

[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
  std::abort();
}

template <typename T>
inline T OrDie(Result<T> result, std::string_view what) {
  if (!result.ok()) Die(fmt::format("{}: {}", what, result.status().ToString()));
  return std::move(result).value();
}

inline void OrDie(const Status& status, std::string_view what) {
  if (!status.ok()) Die(fmt::format("{}: {}", what, status.ToString()));
}

// How message words are drawn from the vocabulary.
enum class Words {
  // Uniformly, like the fixture: every word is in about 14% of the messages, the hard case for
  // keyword search (every query term has a long posting list to rank).
  kUniform,
  // P(rank r) ~ 1/r (Zipf), as in natural text: a few words are everywhere, most are rarer.
  kZipf,
};

inline std::discrete_distribution<int> WordDistribution(Words words) {
  std::vector<double> weights;
  for (int r = 1; r <= kVocabularySize; ++r) {
    weights.push_back(words == Words::kUniform ? 1.0 : 1.0 / r);
  }
  return std::discrete_distribution<int>(weights.begin(), weights.end());
}

// ---- Generated messages ----

constexpr int kSessions = 50;

struct GeneratedMessage {
  std::string session;
  std::string content;
  bool from_user = true;
};

inline std::string SessionId(int index) { return fmt::format("sess-{:02}", index); }

// Messages of 3 to 60 words over kSessions sessions, alternately from the user and the Locrit.
inline std::vector<GeneratedMessage> MakeMessages(int count, uint64_t seed,
                                                  Words words = Words::kUniform) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> session(0, kSessions - 1);
  std::uniform_int_distribution<int> length(3, 60);
  std::discrete_distribution<int> word = WordDistribution(words);
  std::vector<GeneratedMessage> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].session = SessionId(session(rng));
    out[i].from_user = i % 2 == 0;
    const int word_count = length(rng);
    for (int w = 0; w < word_count; ++w) {
      if (w > 0) out[i].content += ' ';
      out[i].content += kVocabulary[word(rng)];
    }
  }
  return out;
}

inline NewMessage ToNewMessage(const GeneratedMessage& m) {
  NewMessage out;
  out.session_id = m.session;
  out.user_id = m.from_user ? "user-alice" : "locrit";
  out.role = m.from_user ? Role::kUser : Role::kAssistant;
  out.content = m.content;
  return out;
}

// ---- Per-operation latency ----

// Times each operation separately so that p50/p99 come from one run (Google Benchmark's own
// figure is a mean per iteration, which hides the slow tail: checkpoints, space reclaiming).
class LatencyRecorder {
 public:
  explicit LatencyRecorder(const benchmark::State& state) {
    samples_.reserve(static_cast<size_t>(state.max_iterations));
  }

  void Add(SteadyClock::time_point start) {
    samples_.push_back(
        std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count());
  }

  void Report(benchmark::State& state) {
    if (samples_.empty()) return;
    state.counters["p50_us"] = Percentile(0.50);
    state.counters["p99_us"] = Percentile(0.99);
  }

 private:
  // Nearest rank: the smallest sample with at least `p` of the samples at or below it.
  double Percentile(double p) {
    const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(samples_.size())));
    const auto nth = samples_.begin() + static_cast<std::ptrdiff_t>(std::max<size_t>(rank, 1) - 1);
    std::nth_element(samples_.begin(), nth, samples_.end());
    return *nth;
  }

  std::vector<double> samples_;
};


}  // namespace locrit::bench
