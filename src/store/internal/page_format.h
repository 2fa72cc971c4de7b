// The SQLite file format, decoded from bytes (https://www.sqlite.org/fileformat2.html): byte
// order helpers, varints, records and b-tree page headers. Every function bounds-checks what it
// reads against the bytes it was given, so hostile input yields "not decodable", never a read
// outside them. Pure functions; thread-safe. Used by the page scanner (page_scanner.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "store/internal/page_scanner.h"

namespace locrit::store_internal {

using Bytes = std::span<const uint8_t>;

// --- Format constants (fileformat2.html §1.2 header, §1.5 b-tree pages, §4 WAL) ---

inline constexpr std::string_view kDbMagic("SQLite format 3\0", 16);
constexpr size_t kDbHeaderSize = 100;
constexpr uint32_t kMinPageSize = 512;
constexpr uint32_t kMaxPageSize = 65536;
constexpr uint32_t kMinUsableSize = 480;  // The format's floor; below it the payload rules break.
constexpr uint32_t kMaxPageNumber = 2147483646;

constexpr uint8_t kIndexInterior = 0x02;
constexpr uint8_t kTableInterior = 0x05;
constexpr uint8_t kIndexLeaf = 0x0A;
constexpr uint8_t kTableLeaf = 0x0D;
constexpr size_t kMaxFragmentedBytes = 60;  // SQLite defragments a page before it gets here.

// The page holding this file offset is never written (it is where the POSIX locks live).
constexpr uint64_t kLockByteOffset = 1073741824;

// Pointer-map entry types (auto-vacuum databases, §1.7).
constexpr uint8_t kPtrmapRootPage = 1;
constexpr uint8_t kPtrmapBtree = 5;

constexpr size_t kMaxColumns = 32767;  // SQLite's hard ceiling on columns in a table.

// --- Byte helpers ---

inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

inline uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline uint32_t Get32LittleEndian(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

// Reads the varint at data[*pos] (1 to 9 bytes, big-endian, 7 bits a byte and all 8 of the
// ninth). Returns false, leaving *pos unspecified, if it does not end before `end`.
bool ReadVarint(Bytes data, size_t end, size_t* pos, uint64_t* out);

bool IsPageSize(uint64_t size);

// How many payload bytes of a cell stay on its b-tree page (§1.6); the rest spills to overflow
// pages. REQUIRES: usable >= kMinUsableSize.
uint64_t LocalPayloadSize(uint64_t payload, uint32_t usable, bool table_leaf);

// Decodes a record (§2.1) that must fill `payload` exactly: a header of serial types, then the
// bodies. Exactness is what makes garbage that merely looks like a cell fail here.
bool DecodeRecord(Bytes payload, std::vector<SqlValue>* values);

// --- B-tree pages ---

bool IsBtreeType(uint8_t type);

// A b-tree page header (§1.5) whose cell pointer array lies inside the page. Views the page's
// bytes, which must outlive it.
struct BtreePage {
  Bytes data;
  uint32_t usable = 0;
  uint8_t type = 0;
  size_t cell_count = 0;
  size_t pointers = 0;      // Offset of the cell pointer array.
  size_t pointers_end = 0;  // One past it: no cell may start before this.
  uint32_t content_start = 0;
  uint16_t first_freeblock = 0;
  uint8_t fragmented = 0;
  uint32_t right_child = 0;  // Interior pages only.

  bool interior() const { return type == kTableInterior || type == kIndexInterior; }
  // The end of the bytes a cell may occupy: the usable area, or less if the file ended early.
  size_t limit() const { return std::min<size_t>(usable, data.size()); }
  size_t CellPointer(size_t i) const { return Get16(&data[pointers + 2 * i]); }
};

// Parses the header of a page leniently: any known type whose pointer array fits. Damaged pages
// reached from a tree are read this way so their intact cells can still be decoded.
std::optional<BtreePage> ParseBtreePage(Bytes data, uint32_t page_number, uint32_t usable);

// Whether a leniently parsed page is also consistent the way SQLite writes pages: content area
// after the pointer array, every cell pointer inside it. Used where no parent vouches for a page.
bool IsWellFormed(const BtreePage& page);

// Whether `data` looks like a non-empty b-tree page written by SQLite at this geometry:
// well-formed, every cell fitting, and its cell content area reaching the end of the usable
// space (SQLite fills a page from the end, so a wrong page size or reserve shows up here).
bool LooksWritten(Bytes data, uint32_t page_number, uint32_t usable);

}  // namespace locrit::store_internal
