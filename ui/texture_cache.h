// GPU copies of snapshot images, uploaded only when their content changes.
//
// Each entry has a name ("samples.grid") and a stamp that identifies its content: the
// snapshot version, the identity of a shared trajectory plus a frame index, or a content
// hash. A hit costs a map lookup; a miss builds the float plane (the `make` callback),
// uploads it and runs the colormap pass once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/engine/engine.h"
#include "ui/colormap.h"

namespace difflab {

struct CachedImage {
  RenderTarget target;
  GridLayout layout;        // cells inside the texture (count 0 for a single image)
  uint64_t stamp = 0;
  Colormap map = Colormap::Image;
  float range = 1.0f;
  bool valid = false;
  uint64_t last_used_frame = 0;

  int width() const { return target.width(); }
  int height() const { return target.height(); }
  void* imgui_id() const { return target.texture().imgui_id(); }
};

class TextureCache {
 public:
  explicit TextureCache(ColormapRenderer& renderer) : m_renderer(renderer) {}

  using MakePlane = std::function<FloatPlane(GridLayout*)>;
  // The texture called `name`, rebuilt with `make` when `stamp`, `map` or `range` changed.
  const CachedImage& get(const std::string& name, uint64_t stamp, Colormap map, float range,
                         const MakePlane& make);

  // The stamp of `images` inside `snapshot`: its content hash, recomputed only when the
  // snapshot version changes (data previews are copied into every snapshot).
  uint64_t content_stamp(const std::string& name, uint64_t snapshot_version,
                         const FloatImages& images);

  // Drops textures not used for a while; call once per frame.
  void end_frame();
  // Drops every texture and memo (a new model: nothing shown belongs to it yet).
  void clear() {
    m_entries.clear();
    m_hashes.clear();
  }
  uint64_t uploads() const { return m_uploads; }
  ColormapRenderer& renderer() { return m_renderer; }

 private:
  struct HashMemo {
    uint64_t version = 0;
    uint64_t hash = 0;
  };
  ColormapRenderer& m_renderer;
  std::map<std::string, CachedImage> m_entries;
  std::map<std::string, HashMemo> m_hashes;
  uint64_t m_frame = 0;
  uint64_t m_uploads = 0;
};

}  // namespace difflab
