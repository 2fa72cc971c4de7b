#include "store/internal/page_format.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace locrit::store_internal {
namespace {

int64_t SignExtend(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n < 8 && (p[0] & 0x80) != 0) v |= ~uint64_t{0} << (8 * n);
  return static_cast<int64_t>(v);
}

// The number of bytes of the cell at `offset`, or nullopt if it does not fit on the page.
std::optional<size_t> CellExtent(const BtreePage& page, size_t offset) {
  const size_t limit = page.limit();
  if (offset < page.pointers_end || offset >= limit) return std::nullopt;
  size_t pos = offset;
  uint64_t value = 0;
  if (page.type == kTableInterior) {
    pos += 4;
    if (!ReadVarint(page.data, limit, &pos, &value)) return std::nullopt;
    return pos - offset;
  }
  if (page.type == kIndexInterior) pos += 4;
  uint64_t payload = 0;
  if (!ReadVarint(page.data, limit, &pos, &payload)) return std::nullopt;
  if (page.type == kTableLeaf && !ReadVarint(page.data, limit, &pos, &value)) return std::nullopt;
  const uint64_t local = LocalPayloadSize(payload, page.usable, page.type == kTableLeaf);
  const uint64_t end = pos + local + (local < payload ? 4 : 0);
  if (end > limit) return std::nullopt;
  return static_cast<size_t>(end - offset);
}

}  // namespace

bool ReadVarint(Bytes data, size_t end, size_t* pos, uint64_t* out) {
  end = std::min(end, data.size());
  uint64_t value = 0;
  for (int i = 0; i < 9; ++i) {
    if (*pos >= end) return false;
    const uint8_t byte = data[(*pos)++];
    if (i == 8) {
      *out = (value << 8) | byte;
      return true;
    }
    value = (value << 7) | (byte & 0x7f);
    if ((byte & 0x80) == 0) {
      *out = value;
      return true;
    }
  }
  return false;  // Unreachable: the ninth byte always ends the loop.
}

bool IsPageSize(uint64_t size) {
  return size >= kMinPageSize && size <= kMaxPageSize && std::has_single_bit(size);
}

uint64_t LocalPayloadSize(uint64_t payload, uint32_t usable, bool table_leaf) {
  const uint64_t u = usable;
  const uint64_t max_local = table_leaf ? u - 35 : (u - 12) * 64 / 255 - 23;
  const uint64_t min_local = (u - 12) * 32 / 255 - 23;
  if (payload <= max_local) return payload;
  const uint64_t k = min_local + (payload - min_local) % (u - 4);
  return k <= max_local ? k : min_local;
}

bool DecodeRecord(Bytes payload, std::vector<SqlValue>* values) {
  values->clear();
  size_t pos = 0;
  uint64_t header_size = 0;
  if (!ReadVarint(payload, payload.size(), &pos, &header_size)) return false;
  if (header_size < pos || header_size > payload.size()) return false;
  const size_t header_end = static_cast<size_t>(header_size);
  size_t body = header_end;
  while (pos < header_end) {
    uint64_t type = 0;
    if (!ReadVarint(payload, header_end, &pos, &type)) return false;
    if (values->size() >= kMaxColumns) return false;
    static constexpr std::array<size_t, 10> kIntegerSizes = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
    uint64_t length = 0;
    if (type < 10) {
      length = kIntegerSizes[type];
    } else if (type >= 12) {
      length = (type - 12) / 2;
    } else {
      return false;  // 10 and 11 are reserved.
    }
    if (length > payload.size() - body) return false;
    const uint8_t* p = payload.data() + body;
    const size_t n = static_cast<size_t>(length);
    SqlValue& v = values->emplace_back();
    if (type == 0) {
      v.type = SqlValue::Type::kNull;
    } else if (type <= 6) {
      v.type = SqlValue::Type::kInteger;
      v.i = SignExtend(p, n);
    } else if (type == 7) {
      v.type = SqlValue::Type::kReal;
      v.r = std::bit_cast<double>(static_cast<uint64_t>(SignExtend(p, 8)));
    } else if (type <= 9) {
      v.type = SqlValue::Type::kInteger;
      v.i = type == 9 ? 1 : 0;
    } else {
      v.type = type % 2 == 0 ? SqlValue::Type::kBlob : SqlValue::Type::kText;
      v.bytes.assign(reinterpret_cast<const char*>(p), n);
    }
    body += n;
  }
  return pos == header_end && body == payload.size();
}

bool IsBtreeType(uint8_t type) {
  return type == kIndexInterior || type == kTableInterior || type == kIndexLeaf ||
         type == kTableLeaf;
}

std::optional<BtreePage> ParseBtreePage(Bytes data, uint32_t page_number, uint32_t usable) {
  const size_t header_at = page_number == 1 ? kDbHeaderSize : 0;
  if (data.size() < header_at + 8) return std::nullopt;
  BtreePage page;
  page.data = data;
  page.usable = usable;
  page.type = data[header_at];
  if (!IsBtreeType(page.type)) return std::nullopt;
  const size_t header_size = page.interior() ? 12 : 8;
  if (header_at + header_size > page.limit()) return std::nullopt;
  page.first_freeblock = Get16(&data[header_at + 1]);
  page.cell_count = Get16(&data[header_at + 3]);
  const uint16_t content = Get16(&data[header_at + 5]);
  page.content_start = content == 0 ? 65536 : content;
  page.fragmented = data[header_at + 7];
  if (page.interior()) page.right_child = Get32(&data[header_at + 8]);
  page.pointers = header_at + header_size;
  page.pointers_end = page.pointers + 2 * page.cell_count;
  if (page.pointers_end > page.limit()) return std::nullopt;
  return page;
}

bool IsWellFormed(const BtreePage& page) {
  if (page.content_start < page.pointers_end || page.content_start > page.usable) return false;
  if (page.fragmented > kMaxFragmentedBytes) return false;
  for (size_t i = 0; i < page.cell_count; ++i) {
    const size_t ptr = page.CellPointer(i);
    if (ptr < page.content_start || ptr >= page.usable) return false;
  }
  return true;
}

bool LooksWritten(Bytes data, uint32_t page_number, uint32_t usable) {
  const std::optional<BtreePage> page = ParseBtreePage(data, page_number, usable);
  if (!page || page->cell_count == 0 || !IsWellFormed(*page)) return false;
  size_t top = 0;
  for (size_t i = 0; i < page->cell_count; ++i) {
    const size_t ptr = page->CellPointer(i);
    const std::optional<size_t> extent = CellExtent(*page, ptr);
    if (!extent) return false;
    top = std::max(top, ptr + *extent);
  }
  size_t block = page->first_freeblock;
  for (size_t guard = 0; block != 0; ++guard) {
    if (guard > usable / 4 || block < page->content_start || block + 4 > page->limit()) {
      return false;
    }
    const size_t end = block + Get16(&data[block + 2]);
    if (end > usable) return false;
    top = std::max(top, end);
    const size_t next = Get16(&data[block]);
    if (next != 0 && next <= block) return false;
    block = next;
  }
  // A freed run of under 4 bytes is a fragment, not a freeblock, so the top may lag by 3.
  return top + 3 >= usable;
}

}  // namespace locrit::store_internal
