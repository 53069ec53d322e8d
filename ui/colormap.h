// The colormap program (shaders/colormap.vert + colormap.frag): turns a float plane into
// RGBA pixels in an off-screen target. Images in [−1, 1] map to grey or RGB; signed
// fields such as the predicted noise ε map to a blue–white–red diverging scale.
#pragma once

#include <string>

#include "ui/float_grid.h"
#include "ui/gl_util.h"

namespace difflab {

enum class Colormap { Image, Diverging, Count };

class ColormapRenderer {
 public:
  ColormapRenderer() = default;
  ~ColormapRenderer();
  ColormapRenderer(const ColormapRenderer&) = delete;
  ColormapRenderer& operator=(const ColormapRenderer&) = delete;

  // Loads the shaders; on failure returns false and sets `error`.
  bool init(std::string* error);
  bool ready() const { return m_program.valid(); }

  // Uploads `plane` and renders it through `map` into `target` (resized to the plane).
  // Diverging maps values in [−range, range]. Leaves the window framebuffer bound.
  void render(const FloatPlane& plane, Colormap map, float range, RenderTarget& target);

 private:
  ShaderProgram m_program;
  Texture2D m_source;
  GLuint m_vao = 0;  // empty: the full-screen triangle comes from gl_VertexID
};

}  // namespace difflab
