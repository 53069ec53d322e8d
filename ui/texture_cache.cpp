#include "ui/texture_cache.h"

namespace difflab {

namespace {
// Frames a texture may go unused before it is freed (about 10 s at 60 fps).
constexpr uint64_t kEvictAfterFrames = 600;
}  // namespace

const CachedImage& TextureCache::get(const std::string& name, uint64_t stamp, Colormap map,
                                     float range, const MakePlane& make) {
  CachedImage& entry = m_entries[name];
  entry.last_used_frame = m_frame;
  if (entry.valid && entry.stamp == stamp && entry.map == map && entry.range == range)
    return entry;
  GridLayout layout;
  const FloatPlane plane = make(&layout);
  entry.layout = layout;
  entry.stamp = stamp;
  entry.map = map;
  entry.range = range;
  entry.valid = !plane.empty();
  if (entry.valid) {
    m_renderer.render(plane, map, range, entry.target);
    ++m_uploads;
  }
  return entry;
}

uint64_t TextureCache::content_stamp(const std::string& name, uint64_t snapshot_version,
                                     const FloatImages& images) {
  HashMemo& memo = m_hashes[name];
  if (memo.version != snapshot_version || memo.hash == 0) {
    memo.version = snapshot_version;
    memo.hash = content_hash(images);
  }
  return memo.hash;
}

void TextureCache::end_frame() {
  ++m_frame;
  for (auto it = m_entries.begin(); it != m_entries.end();) {
    if (m_frame - it->second.last_used_frame > kEvictAfterFrames)
      it = m_entries.erase(it);
    else
      ++it;
  }
}

}  // namespace difflab
