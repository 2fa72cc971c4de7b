#include "store/internal/page_scanner.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/internal/page_format.h"
#include "store/internal/page_source.h"

namespace locrit::store_internal {
namespace {

// Geometry detection looks at this many bytes of pages per candidate page size (but at least
// kMinGeometrySamplePages pages): enough pages to outvote damage, cheap for a large file.
constexpr uint64_t kGeometrySampleBytes = uint64_t{2} << 20;
constexpr uint64_t kMinGeometrySamplePages = 32;

// Overflow pages read per page of the database before further chains are refused: a legitimate
// file reads each overflow page once, so this only stops hostile cells that share one long chain.
constexpr int64_t kOverflowReadsPerPage = 4;
constexpr int64_t kOverflowReadsSlack = 1024;

struct Geometry {
  uint32_t page_size = 0;
  uint32_t usable = 0;
  friend bool operator==(const Geometry&, const Geometry&) = default;
};

// How many of the first pages of `source` look written with `usable` bytes per page.
Result<int64_t> ScoreGeometry(const PageSource& source, uint32_t usable) {
  const uint64_t sample =
      std::max(kMinGeometrySamplePages, kGeometrySampleBytes / source.page_size());
  const uint32_t pages = static_cast<uint32_t>(std::min<uint64_t>(source.page_count(), sample));
  std::vector<uint8_t> buffer;
  int64_t score = 0;
  for (uint32_t page = 1; page <= pages; ++page) {
    RETURN_IF_ERROR(source.Read(page, &buffer));
    if (buffer.size() == source.page_size() && LooksWritten(buffer, page, usable)) ++score;
  }
  return score;
}

// The geometry the header states, if its magic and fields are sane.
std::optional<Geometry> HeaderGeometry(Bytes header) {
  if (header.size() < kDbHeaderSize) return std::nullopt;
  if (std::memcmp(header.data(), kDbMagic.data(), kDbMagic.size()) != 0) return std::nullopt;
  const uint16_t raw = Get16(&header[16]);
  const uint32_t page_size = raw == 1 ? 65536 : raw;
  if (!IsPageSize(page_size)) return std::nullopt;
  const uint32_t reserved = header[20];
  if (page_size - reserved < kMinUsableSize) return std::nullopt;
  return Geometry{page_size, page_size - reserved};
}

// --- The scan ---

// What a page turned out to be. Pages keep kUnknown until something claims them.
enum class PageRole : uint8_t {
  kUnknown,
  kTreeInterior,
  kTreeLeaf,
  kIndexRoot,
  kOverflow,
  kFreelist,
  kPointerMap,
  kLockByte,
  kAbsent,  // No image: beyond the file's end and not in the WAL, or past ScanLimits::max_pages.
};

// One table b-tree found from the schema.
struct TreeInfo {
  std::string name;
  uint32_t root = 0;
  bool internal = false;         // sqlite_*: walked so its pages are owned, rows not reported.
  std::vector<uint32_t> leaves;  // In key order.
};

// A page of a tree walk still to visit, with the rowid range (lo, hi] its parent assigns it.
struct PendingPage {
  uint32_t page = 0;
  int depth = 0;
  std::optional<int64_t> lo;
  std::optional<int64_t> hi;
};

bool InRange(int64_t key, const PendingPage& p) {
  return (!p.lo || key > *p.lo) && (!p.hi || key <= *p.hi);
}

bool IsInternalName(std::string_view name) {
  constexpr std::string_view kPrefix = "sqlite_";
  if (name.size() < kPrefix.size()) return false;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    const char c = name[i];
    const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kPrefix[i]) return false;
  }
  return true;
}

// The table name in a "CREATE TABLE [IF NOT EXISTS] name(...)" statement, unquoted; nullopt if
// the text does not read that way.
std::optional<std::string> CreateTableName(std::string_view sql) {
  size_t pos = 0;
  auto skip_space = [&] {
    while (pos < sql.size() &&
           (sql[pos] == ' ' || sql[pos] == '\t' || sql[pos] == '\n' || sql[pos] == '\r')) {
      ++pos;
    }
  };
  auto keyword = [&](std::string_view word) {
    skip_space();
    if (sql.size() - pos < word.size()) return false;
    for (size_t i = 0; i < word.size(); ++i) {
      const char c = sql[pos + i];
      if ((c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c) != word[i]) return false;
    }
    pos += word.size();
    return true;
  };
  if (!keyword("CREATE") || !keyword("TABLE")) return std::nullopt;
  const size_t before_if = pos;
  if (!(keyword("IF") && keyword("NOT") && keyword("EXISTS"))) pos = before_if;
  skip_space();
  if (pos >= sql.size()) return std::nullopt;
  const char open = sql[pos];
  if (open == '"' || open == '`' || open == '[') {
    const char close = open == '[' ? ']' : open;
    std::string name;
    for (++pos; pos < sql.size(); ++pos) {
      if (sql[pos] != close) {
        name += sql[pos];
      } else if (close != ']' && pos + 1 < sql.size() && sql[pos + 1] == close) {
        name += close;  // A doubled quote stands for one.
        ++pos;
      } else {
        return name;
      }
    }
    return std::nullopt;
  }
  const size_t start = pos;
  while (pos < sql.size() && sql[pos] != '(' && sql[pos] != ' ' && sql[pos] != '\t' &&
         sql[pos] != '\n' && sql[pos] != '\r') {
    ++pos;
  }
  if (pos == start) return std::nullopt;
  return std::string(sql.substr(start, pos - start));
}

// What an internal table's rows look like, judged from the start of a record: column count and
// the serial types (and, for the schema, the first value) on the page itself.
enum class RowShape { kAny, kSchema, kSequence };

RowShape ShapeOf(std::string_view internal_table) {
  if (internal_table == "sqlite_schema") return RowShape::kSchema;
  if (internal_table == "sqlite_sequence") return RowShape::kSequence;
  return RowShape::kAny;
}

bool IsIntegerType(uint64_t type) { return (type >= 1 && type <= 6) || type == 8 || type == 9; }
bool IsTextType(uint64_t type) { return type >= 13 && type % 2 == 1; }

// Whether the record starting at `local` (the part of a payload kept on the page) has `shape`.
bool HasShape(Bytes local, RowShape shape) {
  if (shape == RowShape::kAny) return true;
  size_t pos = 0;
  uint64_t header_size = 0;
  if (!ReadVarint(local, local.size(), &pos, &header_size) || header_size > local.size()) {
    return false;
  }
  std::vector<uint64_t> types;
  while (pos < header_size && types.size() < 6) {
    uint64_t type = 0;
    if (!ReadVarint(local, static_cast<size_t>(header_size), &pos, &type)) return false;
    types.push_back(type);
  }
  if (shape == RowShape::kSequence) {
    return types.size() == 2 && IsTextType(types[0]) && (IsIntegerType(types[1]) || types[1] == 0);
  }
  // sqlite_schema: type, name, tbl_name, rootpage, sql; type is one of four words.
  if (types.size() != 5 || !IsTextType(types[0]) || !IsTextType(types[1]) ||
      !IsTextType(types[2]) || !(IsIntegerType(types[3]) || types[3] == 0)) {
    return false;
  }
  const size_t length = static_cast<size_t>((types[0] - 13) / 2);
  const size_t body = static_cast<size_t>(header_size);
  if (length > local.size() - body) return false;
  const std::string_view word(reinterpret_cast<const char*>(local.data() + body), length);
  return word == "table" || word == "index" || word == "view" || word == "trigger";
}

// One scan of one database. Confined to the calling thread.
class Scanner {
 public:
  Scanner(const PageSource& source, uint32_t usable, const ScanLimits& limits,
          const std::function<void(const ScannedRow&)>& sink, ScanReport* report)
      : source_(source),
        usable_(usable),
        limits_(limits),
        sink_(sink),
        report_(*report),
        dense_roles_(size_t{source.dense_pages()} + 1, PageRole::kUnknown),
        overflow_budget_(kOverflowReadsPerPage * source.existing_pages() +
                         kOverflowReadsSlack) {}

  Status Run(const std::optional<Bytes>& trusted_header) {
    report_.pages_total = source_.existing_pages();
    ForEachPage([this](uint32_t page) {
      if (source_.FromWal(page)) ++report_.pages_read_from_wal;
    });
    MarkLockBytePage();
    if (trusted_header) {
      auto_vacuum_ = Get32(&(*trusted_header)[52]) != 0;
      if (auto_vacuum_) RETURN_IF_ERROR(MarkPointerMapPages());
    }
    RETURN_IF_ERROR(ReadSchema());
    for (TreeInfo& tree : trees_) {
      bool damaged = false;
      RETURN_IF_ERROR(WalkTree(tree.root, &tree.leaves, &damaged));
      // Before the next tree is walked, so a leaf released here can still go to its own tree.
      if (tree.internal) RETURN_IF_ERROR(VetLeaves(ShapeOf(tree.name), &tree.leaves, &damaged));
    }
    // Leaves of live trees are decoded before the freelist is read, so a damaged freelist cannot
    // take the overflow pages of live rows away from them.
    for (const TreeInfo& tree : trees_) {
      for (const uint32_t leaf : tree.leaves) {
        if (stopped()) return Status::Ok();
        RETURN_IF_ERROR(DecodeLeaf(leaf, tree.name, /*orphan=*/false, tree.internal));
      }
    }
    if (trusted_header) RETURN_IF_ERROR(MarkFreelist(*trusted_header));
    return ScanOrphans();
  }

 private:
  bool stopped() const { return report_.stopped_at_limit; }

  PageRole Role(uint32_t page) const {
    if (page >= 1 && page < dense_roles_.size()) return dense_roles_[page];
    if (!source_.Exists(page)) return PageRole::kAbsent;
    const auto it = sparse_roles_.find(page);
    return it == sparse_roles_.end() ? PageRole::kUnknown : it->second;
  }

  void SetRole(uint32_t page, PageRole role) {
    if (page >= 1 && page < dense_roles_.size()) {
      dense_roles_[page] = role;
    } else if (source_.Exists(page)) {
      sparse_roles_[page] = role;
    }
  }

  // Calls f(page) for every page that exists, in page order.
  template <typename F>
  void ForEachPage(F f) const {
    for (uint32_t page = 1; page <= source_.dense_pages(); ++page) f(page);
    for (const uint32_t page : source_.sparse_pages()) f(page);
  }

  void MarkLockBytePage() {
    const uint64_t page = kLockByteOffset / source_.page_size() + 1;
    if (page <= source_.page_count()) SetRole(static_cast<uint32_t>(page), PageRole::kLockByte);
  }

  // Pointer-map page i sits at 2 + i * (entries per map page + 1) and describes the pages after
  // it. Only pages whose every entry is plausible are taken as maps (a header damaged into
  // claiming auto-vacuum must not hide real b-tree pages).
  Status MarkPointerMapPages() {
    const uint32_t stride = usable_ / 5 + 1;
    std::vector<uint8_t> buffer;
    for (uint64_t page = 2; page <= source_.page_count(); page += stride) {
      const uint32_t p = static_cast<uint32_t>(page);
      if (Role(p) != PageRole::kUnknown) continue;
      RETURN_IF_ERROR(source_.Read(p, &buffer));
      if (buffer.size() < usable_) continue;
      bool plausible = true;
      for (size_t at = 0; at + 5 <= usable_ && plausible; at += 5) {
        plausible = buffer[at] <= kPtrmapBtree && Get32(&buffer[at + 1]) <= source_.page_count();
      }
      if (!plausible) continue;
      SetRole(p, PageRole::kPointerMap);
      pointer_maps_.emplace(p, std::vector<uint8_t>(buffer.begin(), buffer.begin() + usable_));
    }
    return Status::Ok();
  }

  // Walks sqlite_schema (the tree at page 1) and records each table b-tree.
  Status ReadSchema() {
    std::vector<uint32_t> leaves;
    bool damaged = false;
    RETURN_IF_ERROR(WalkTree(1, &leaves, &damaged));
    RETURN_IF_ERROR(VetLeaves(RowShape::kSchema, &leaves, &damaged));
    report_.schema_readable =
        !damaged && (Role(1) == PageRole::kTreeLeaf || Role(1) == PageRole::kTreeInterior);
    std::vector<uint8_t> buffer;
    for (const uint32_t leaf : leaves) {
      RETURN_IF_ERROR(source_.Read(leaf, &buffer));
      const std::optional<BtreePage> page = ParseBtreePage(buffer, leaf, usable_);
      if (!page) continue;
      for (size_t i = 0; i < page->cell_count; ++i) {
        ASSIGN_OR_RETURN(const bool ok, DecodeCell(*page, leaf, i));
        if (!ok) {
          report_.schema_readable = false;
          continue;
        }
        AddSchemaRow(row_.values);
      }
    }
    return Status::Ok();
  }

  // Releases the leaves of an internal tree whose rows do not have that table's shape: a damaged
  // pointer (above all the schema's right-most one, whose key range is unbounded) can lead an
  // internal tree onto a user table's leaf, whose rows would then never be reported. Released
  // leaves go back to kUnknown for their own tree's walk or the orphan scan. Page 1 stays.
  Status VetLeaves(RowShape shape, std::vector<uint32_t>* leaves, bool* damaged) {
    if (shape == RowShape::kAny) return Status::Ok();
    std::vector<uint8_t> buffer;
    std::vector<uint32_t> kept;
    for (const uint32_t leaf : *leaves) {
      RETURN_IF_ERROR(source_.Read(leaf, &buffer));
      const std::optional<BtreePage> page = ParseBtreePage(buffer, leaf, usable_);
      size_t shaped = 0;
      for (size_t i = 0; page && i < page->cell_count; ++i) {
        uint64_t payload_size = 0;
        uint64_t rowid = 0;
        const std::optional<Bytes> local =
            LocalPayload(*page, page->CellPointer(i), &payload_size, &rowid);
        if (local && HasShape(*local, shape)) ++shaped;
      }
      if (leaf != 1 && page && page->cell_count > 0 && shaped * 2 < page->cell_count) {
        SetRole(leaf, PageRole::kUnknown);
        *damaged = true;
        ++report_.pages_unparseable;
        continue;
      }
      kept.push_back(leaf);
    }
    *leaves = std::move(kept);
    return Status::Ok();
  }

  // The part of a table-leaf cell's payload stored on the page, if the cell (with its overflow
  // page number when the payload spills) fits; also its payload size and rowid.
  std::optional<Bytes> LocalPayload(const BtreePage& page, size_t ptr, uint64_t* payload_size,
                                    uint64_t* rowid) const {
    const size_t limit = page.limit();
    if (ptr < page.pointers_end || ptr >= limit) return std::nullopt;
    size_t pos = ptr;
    if (!ReadVarint(page.data, limit, &pos, payload_size) ||
        !ReadVarint(page.data, limit, &pos, rowid)) {
      return std::nullopt;
    }
    const uint64_t local = LocalPayloadSize(*payload_size, usable_, /*table_leaf=*/true);
    if (pos + local + (local < *payload_size ? 4 : 0) > limit) return std::nullopt;
    return page.data.subspan(pos, static_cast<size_t>(local));
  }

  // A sqlite_schema row: type, name, tbl_name, rootpage, sql.
  void AddSchemaRow(const std::vector<SqlValue>& v) {
    if (v.size() < 4 || v[0].type != SqlValue::Type::kText || v[0].bytes != "table" ||
        v[1].type != SqlValue::Type::kText || v[3].type != SqlValue::Type::kInteger) {
      return;
    }
    // Virtual tables have root 0 and no b-tree of their own.
    if (v[3].i < 2 || v[3].i > kMaxPageNumber) return;
    const uint32_t root = static_cast<uint32_t>(v[3].i);
    ScannedTable table;
    table.name = v[1].bytes;
    table.root_page = root;
    if (v.size() > 4 && v[4].type == SqlValue::Type::kText) table.sql = v[4].bytes;
    // The name is stored three times (name, tbl_name, and in the CREATE statement) and records
    // have no checksum: where a flipped byte makes them disagree, two agreeing copies win.
    const std::string* tbl_name = v[2].type == SqlValue::Type::kText ? &v[2].bytes : nullptr;
    const std::optional<std::string> sql_name = CreateTableName(table.sql);
    if (tbl_name != nullptr && *tbl_name != table.name && sql_name && *sql_name == *tbl_name) {
      table.name = *tbl_name;
    }
    if (root_names_.count(root) == 0) {
      root_names_.emplace(root, table.name);
      trees_.push_back({table.name, root, IsInternalName(table.name), {}});
    }
    report_.tables.push_back(std::move(table));
  }

  // Walks the table b-tree rooted at `root`, claiming its pages and listing its leaves in key
  // order. A page that is missing, unparseable, already claimed (a cycle or a cross-linked
  // pointer), too deep, or whose keys mostly fall outside the range its parent gives it is not
  // followed: *damaged is set and the page is left for the orphan scan.
  Status WalkTree(uint32_t root, std::vector<uint32_t>* leaves, bool* damaged) {
    std::vector<PendingPage> stack = {{root, 0, std::nullopt, std::nullopt}};
    std::vector<uint8_t> buffer;
    std::vector<std::pair<uint32_t, int64_t>> children;  // (child, its key) per interior cell.
    while (!stack.empty()) {
      const PendingPage pending = stack.back();
      stack.pop_back();
      const uint32_t number = pending.page;
      if (number == 0 || number > source_.page_count() || Role(number) != PageRole::kUnknown ||
          pending.depth > limits_.max_tree_depth) {
        *damaged = true;
        ++report_.pages_unparseable;
        continue;
      }
      RETURN_IF_ERROR(source_.Read(number, &buffer));
      const std::optional<BtreePage> page = ParseBtreePage(buffer, number, usable_);
      if (page && (page->type == kIndexInterior || page->type == kIndexLeaf) &&
          pending.depth == 0 && number != 1) {
        SetRole(number, PageRole::kIndexRoot);  // A WITHOUT ROWID table: not ours to read.
        continue;
      }
      if (!page || page->type == kIndexInterior || page->type == kIndexLeaf) {
        *damaged = true;
        ++report_.pages_unparseable;
        continue;
      }
      // Keys of the page: the cells' rowids (leaf) or separator keys (interior).
      size_t readable = 0;
      size_t in_range = 0;
      children.clear();
      for (size_t i = 0; i < page->cell_count; ++i) {
        const size_t ptr = page->CellPointer(i);
        if (ptr < page->pointers_end || ptr >= page->limit()) continue;
        size_t pos = ptr;
        uint64_t key = 0;
        uint32_t child = 0;
        if (page->type == kTableInterior) {
          if (ptr + 4 > page->limit()) continue;
          child = Get32(&buffer[ptr]);
          pos += 4;
        } else {
          uint64_t payload_size = 0;
          if (!ReadVarint(buffer, page->limit(), &pos, &payload_size)) continue;
        }
        if (!ReadVarint(buffer, page->limit(), &pos, &key)) continue;
        ++readable;
        if (InRange(static_cast<int64_t>(key), pending)) ++in_range;
        if (page->type == kTableInterior) children.emplace_back(child, static_cast<int64_t>(key));
      }
      if (in_range * 2 < readable) {
        *damaged = true;
        ++report_.pages_unparseable;
        continue;
      }
      if (page->type == kTableLeaf) {
        SetRole(number, PageRole::kTreeLeaf);
        leaves->push_back(number);
        continue;
      }
      SetRole(number, PageRole::kTreeInterior);
      // Children in key order: cell i's child holds keys in (key[i-1], key[i]], the right child
      // those above the last key. Pushed in reverse so they are visited in order.
      const size_t first_child = stack.size();
      std::optional<int64_t> lo = pending.lo;
      for (const auto& [child, key] : children) {
        stack.push_back({child, pending.depth + 1, lo, key});
        lo = key;
      }
      stack.push_back({page->right_child, pending.depth + 1, lo, pending.hi});
      std::reverse(stack.begin() + static_cast<std::ptrdiff_t>(first_child), stack.end());
    }
    return Status::Ok();
  }

  // Reads a cell's overflow chain: `remaining` more payload bytes from page `next` on, appended
  // to *payload, and claims its pages. False (nothing claimed) if the chain leaves the file,
  // meets a page owned by something else or itself, ends early or runs on past the payload.
  Result<bool> ReadOverflow(uint32_t next, uint64_t remaining, std::string* payload,
                            std::vector<uint32_t>* pages) {
    pages->clear();
    const uint64_t per_page = usable_ - 4;
    while (remaining > 0) {
      if (next < 2 || next > source_.page_count() || Role(next) != PageRole::kUnknown ||
          overflow_reads_ >= overflow_budget_) {
        return false;
      }
      ++overflow_reads_;
      RETURN_IF_ERROR(source_.Read(next, &overflow_buffer_));
      const uint64_t n = std::min(remaining, per_page);
      if (overflow_buffer_.size() < 4 + n) return false;
      payload->append(reinterpret_cast<const char*>(overflow_buffer_.data() + 4),
                      static_cast<size_t>(n));
      remaining -= n;
      pages->push_back(next);
      next = Get32(overflow_buffer_.data());
    }
    // SQLite ends every chain with a zero pointer; a chain that runs on was entered in the middle
    // of another cell's chain (a damaged pointer or length) and would take its pages.
    if (next != 0) return false;
    std::vector<uint32_t> sorted = *pages;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return false;
    for (const uint32_t p : *pages) SetRole(p, PageRole::kOverflow);
    return true;
  }

  // Decodes table-leaf cell `i` of `page` into row_ (rowid, values, page, overflow pages).
  // Returns false for a cell that cannot be decoded.
  Result<bool> DecodeCell(const BtreePage& page, uint32_t number, size_t i) {
    uint64_t payload_size = 0;
    uint64_t rowid = 0;
    const std::optional<Bytes> local =
        LocalPayload(page, page.CellPointer(i), &payload_size, &rowid);
    if (!local) return false;
    if (payload_size > static_cast<uint64_t>(std::max<int64_t>(limits_.max_record_bytes, 0))) {
      return false;
    }
    const bool spills = local->size() < payload_size;
    // Nor can a chain hold more than the pages there are: a lying size allocates nothing.
    if (payload_size - local->size() >
        static_cast<uint64_t>(source_.existing_pages()) * (usable_ - 4)) {
      return false;
    }
    payload_.assign(reinterpret_cast<const char*>(local->data()), local->size());
    row_.overflow_pages.clear();
    if (spills) {
      payload_.reserve(static_cast<size_t>(payload_size));
      const uint32_t first = Get32(local->data() + local->size());
      ASSIGN_OR_RETURN(const bool chained, ReadOverflow(first, payload_size - local->size(),
                                                        &payload_, &row_.overflow_pages));
      if (!chained) return false;
    }
    const Bytes record(reinterpret_cast<const uint8_t*>(payload_.data()), payload_.size());
    if (!DecodeRecord(record, &row_.values)) {
      // The chain was claimed for a record that proved bad; give its pages back.
      for (const uint32_t p : row_.overflow_pages) SetRole(p, PageRole::kUnknown);
      return false;
    }
    row_.rowid = static_cast<int64_t>(rowid);
    row_.page = number;
    return true;
  }

  // Decodes and reports every row of table leaf `number`.
  Status DecodeLeaf(uint32_t number, const std::string& table, bool orphan, bool internal) {
    RETURN_IF_ERROR(source_.Read(number, &leaf_buffer_));
    const std::optional<BtreePage> page = ParseBtreePage(leaf_buffer_, number, usable_);
    if (!page || page->type != kTableLeaf) return Status::Ok();
    if (orphan && !IsWellFormed(*page)) return Status::Ok();
    if (!internal) ++report_.leaf_pages;
    if (orphan) {
      ++report_.orphan_leaf_pages;
      row_.table_hint = PointerMapOwner(number);
    } else {
      row_.table_hint.clear();
    }
    row_.table = table;
    for (size_t i = 0; i < page->cell_count; ++i) {
      if (++cells_seen_ > limits_.max_cells) {
        report_.stopped_at_limit = true;
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(const bool ok, DecodeCell(*page, number, i));
      if (internal) continue;
      if (!ok) {
        ++report_.cells_undecodable;
        continue;
      }
      ++report_.cells_decoded;
      ++report_.rows_per_table[table];
      sink_(row_);
    }
    return Status::Ok();
  }

  // The pointer-map entry of `page`: (type, parent), if its map page was found plausible.
  std::optional<std::pair<uint8_t, uint32_t>> PointerMapEntry(uint32_t page) const {
    if (page < 3) return std::nullopt;
    const uint32_t entries = usable_ / 5;
    const uint32_t map = 2 + (page - 2) / (entries + 1) * (entries + 1);
    if (map == page) return std::nullopt;
    const auto it = pointer_maps_.find(map);
    if (it == pointer_maps_.end()) return std::nullopt;
    const size_t at = size_t{page - map - 1} * 5;
    if (at + 5 > it->second.size()) return std::nullopt;
    return std::make_pair(it->second[at], Get32(&it->second[at + 1]));
  }

  // The table the pointer map says owns `page`: parent pointers up to a root page named in the
  // schema. "" if the map is absent, damaged or leads nowhere known.
  std::string PointerMapOwner(uint32_t page) const {
    uint32_t current = page;
    for (int step = 0; step <= limits_.max_tree_depth; ++step) {
      const auto entry = PointerMapEntry(current);
      if (!entry) return "";
      if (entry->first == kPtrmapRootPage) {
        const auto it = root_names_.find(current);
        return it == root_names_.end() ? "" : it->second;
      }
      if (entry->first != kPtrmapBtree || entry->second == 0) return "";
      current = entry->second;
    }
    return "";
  }

  // Claims the freelist trunk and leaf pages listed from the header (offsets 32 and 36): their
  // contents are stale and must not come back as orphans. A damaged trunk ends the walk.
  Status MarkFreelist(Bytes header) {
    uint32_t trunk = Get32(&header[32]);
    const size_t max_leaves = usable_ / 4 - 2;
    std::vector<uint8_t> buffer;
    for (int64_t guard = 0; trunk != 0 && guard < source_.existing_pages(); ++guard) {
      if (trunk > source_.page_count() || Role(trunk) != PageRole::kUnknown) break;
      RETURN_IF_ERROR(source_.Read(trunk, &buffer));
      if (buffer.size() < 8) break;
      const uint32_t count = Get32(&buffer[4]);
      if (count > max_leaves || 8 + size_t{count} * 4 > buffer.size()) break;
      SetRole(trunk, PageRole::kFreelist);
      for (uint32_t i = 0; i < count; ++i) {
        const uint32_t leaf = Get32(&buffer[8 + size_t{i} * 4]);
        if (leaf >= 2 && leaf <= source_.page_count() && Role(leaf) == PageRole::kUnknown) {
          SetRole(leaf, PageRole::kFreelist);
        }
      }
      trunk = Get32(&buffer[0]);
    }
    return Status::Ok();
  }

  // Decodes every table leaf that nothing has claimed: leaves cut off from their root.
  Status ScanOrphans() {
    Status status;
    ForEachPage([&](uint32_t page) {
      if (!status.ok() || stopped() || Role(page) != PageRole::kUnknown) return;
      status = source_.Read(page, &leaf_buffer_);
      const size_t flag_at = page == 1 ? kDbHeaderSize : 0;
      if (!status.ok() || leaf_buffer_.size() <= flag_at || leaf_buffer_[flag_at] != kTableLeaf) {
        return;
      }
      status = DecodeLeaf(page, "", /*orphan=*/true, /*internal=*/false);
    });
    return status;
  }

  const PageSource& source_;
  const uint32_t usable_;
  const ScanLimits& limits_;
  const std::function<void(const ScannedRow&)>& sink_;
  ScanReport& report_;

  // What each existing page is: dense_roles_[page] for the pages of the file (dense_roles_[0]
  // unused), sparse_roles_ for WAL pages beyond it.
  std::vector<PageRole> dense_roles_;
  std::unordered_map<uint32_t, PageRole> sparse_roles_;
  std::vector<TreeInfo> trees_;
  std::unordered_map<uint32_t, std::string> root_names_;
  std::unordered_map<uint32_t, std::vector<uint8_t>> pointer_maps_;  // Plausible map pages.
  bool auto_vacuum_ = false;
  int64_t cells_seen_ = 0;
  int64_t overflow_reads_ = 0;
  const int64_t overflow_budget_;

  // Scratch reused across cells, so a scan allocates per page size, not per row.
  ScannedRow row_;
  std::string payload_;
  std::vector<uint8_t> leaf_buffer_;
  std::vector<uint8_t> overflow_buffer_;
};

// Chooses the page size and usable size: the header's when the pages agree with it, otherwise
// the candidate under which the most pages look written (4096 first on ties, then 512 up).
Result<Geometry> ChooseGeometry(const ReadOnlyFile& db, const ReadOnlyFile* wal,
                                const WalImage* image, const std::optional<Geometry>& header,
                                int64_t max_pages, bool* header_valid) {
  std::vector<Geometry> candidates;
  if (image != nullptr) {
    // The WAL's page size is checksummed; only the reserve can be in doubt.
    if (header && header->page_size == image->page_size) candidates.push_back(*header);
    candidates.push_back({image->page_size, image->page_size});
  } else {
    if (header) candidates.push_back(*header);
    candidates.push_back({4096, 4096});
    for (uint32_t size = kMinPageSize; size <= kMaxPageSize; size *= 2) {
      candidates.push_back({size, size});
    }
  }
  std::optional<Geometry> best;
  int64_t best_score = -1;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Geometry& g = candidates[i];
    if (std::find(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(i), g) !=
        candidates.begin() + static_cast<std::ptrdiff_t>(i)) {
      continue;  // Already scored.
    }
    const PageSource source(&db, wal, image, g.page_size, max_pages);
    ASSIGN_OR_RETURN(const int64_t score, ScoreGeometry(source, g.usable));
    if (score > best_score) {
      best = g;
      best_score = score;
    }
  }
  *header_valid = header && *best == *header;
  return *best;
}

}  // namespace

Result<ScanReport> ScanDatabaseFile(const std::string& db_path, const std::string& wal_path,
                                    const std::function<void(const ScannedRow&)>& sink,
                                    const ScanLimits& limits) {
  ASSIGN_OR_RETURN(const ReadOnlyFile db, ReadOnlyFile::Open(db_path));
  ReadOnlyFile wal;
  std::optional<WalImage> image;
  if (!wal_path.empty()) {
    Result<ReadOnlyFile> opened = ReadOnlyFile::Open(wal_path);
    if (opened.ok()) {
      wal = std::move(opened).value();
      ASSIGN_OR_RETURN(image, ReadWal(wal));
    } else if (opened.status().code() != StatusCode::kNotFound) {
      return opened.status();
    }
  }
  const WalImage* applied = image ? &*image : nullptr;

  // The header as of the last commit: page 1 from the WAL when it has it.
  std::vector<uint8_t> header(kDbHeaderSize);
  if (applied != nullptr && applied->page_offset.count(1) != 0) {
    ASSIGN_OR_RETURN(const size_t n, wal.ReadAt(applied->page_offset.at(1), header));
    header.resize(n);
  } else {
    ASSIGN_OR_RETURN(const size_t n, db.ReadAt(0, header));
    header.resize(n);
  }

  ScanReport report;
  bool header_valid = false;
  ASSIGN_OR_RETURN(const Geometry geometry,
                   ChooseGeometry(db, &wal, applied, HeaderGeometry(header),
                                  limits.max_pages, &header_valid));
  report.page_size = geometry.page_size;
  report.usable_size = geometry.usable;
  report.header_valid = header_valid;
  if (header_valid) {
    const uint32_t encoding = Get32(&header[56]);
    report.text_encoding = encoding >= 1 && encoding <= 3 ? static_cast<int>(encoding) : 0;
  }
  if (applied != nullptr) report.wal_frames_applied = applied->frames;

  const PageSource source(&db, &wal, applied, geometry.page_size, limits.max_pages);
  Scanner scanner(source, geometry.usable, limits, sink, &report);
  RETURN_IF_ERROR(scanner.Run(header_valid ? std::optional<Bytes>(Bytes(header)) : std::nullopt));
  if (source.capped()) report.stopped_at_limit = true;
  return report;
}

}  // namespace locrit::store_internal

