// A set of byte ranges of one file, kept disjoint and merged: what an undo journal has saved
// (undo_journal.h), what an in-place edit still owes the image (in_place_edit.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>

namespace pibake {

class ByteRangeSet {
 public:
  // Adds bytes [start, end), merged with every range it overlaps or touches.
  void add(uint64_t start, uint64_t end) {
    if (start >= end) return;
    auto it = ranges_.lower_bound(start);
    if (it != ranges_.begin() && std::prev(it)->second >= start) --it;
    while (it != ranges_.end() && it->first <= end) {
      start = std::min(start, it->first);
      end = std::max(end, it->second);
      it = ranges_.erase(it);
    }
    ranges_.emplace(start, end);
  }

  // Removes bytes [start, end), cutting a range that reaches past either end.
  void remove(uint64_t start, uint64_t end) {
    if (start >= end) return;
    std::map<uint64_t, uint64_t>::const_iterator it = first_ending_after(start);
    while (it != ranges_.end() && it->first < end) {
      const uint64_t s = it->first, e = it->second;
      it = ranges_.erase(it);
      if (s < start) ranges_.emplace(s, start);
      if (e > end) it = ranges_.emplace(end, e).first;
    }
  }

  // Calls fn(from, to) for each piece of [start, end) that is in the set, in order.
  template <typename Fn>
  void for_each_inside(uint64_t start, uint64_t end, Fn&& fn) const {
    for (auto it = first_ending_after(start); it != ranges_.end() && it->first < end; ++it) {
      fn(std::max(start, it->first), std::min(end, it->second));
    }
  }

  // Calls fn(from, to) for each piece of [start, end) that is not in the set, in order.
  template <typename Fn>
  void for_each_outside(uint64_t start, uint64_t end, Fn&& fn) const {
    uint64_t pos = start;
    for (auto it = first_ending_after(start); pos < end; ++it) {
      const uint64_t gap_end = it != ranges_.end() ? std::min(end, it->first) : end;
      if (pos < gap_end) fn(pos, gap_end);
      if (it == ranges_.end()) break;
      pos = std::max(pos, it->second);
    }
  }

  // The ranges, start -> end (exclusive), in order.
  const std::map<uint64_t, uint64_t>& ranges() const { return ranges_; }
  void clear() { ranges_.clear(); }

 private:
  // The first range that ends after byte `pos` (it may start before it).
  std::map<uint64_t, uint64_t>::const_iterator first_ending_after(uint64_t pos) const {
    auto it = ranges_.upper_bound(pos);
    if (it != ranges_.begin() && std::prev(it)->second > pos) --it;
    return it;
  }

  std::map<uint64_t, uint64_t> ranges_;
};

}  // namespace pibake
