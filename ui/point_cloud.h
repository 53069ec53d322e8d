// 2-D point clouds drawn by the GPU (shaders/points.*): each layer is a span of (x, y)
// pairs in data units, drawn as round GL_POINTS or as GL_LINES into an off-screen
// target that the panels show with ImGui::Image (flipped, so y points up).
#pragma once

#include <imgui.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ui/gl_util.h"

namespace difflab {

struct PointLayer {
  std::vector<float> xy;    // x0, y0, x1, y1, ...
  ImVec4 color{1, 1, 1, 1};
  float size = 3.0f;        // point diameter in pixels
  bool lines = false;       // consecutive pairs of points are line segments
};

class PointRenderer {
 public:
  PointRenderer() = default;
  ~PointRenderer();
  PointRenderer(const PointRenderer&) = delete;
  PointRenderer& operator=(const PointRenderer&) = delete;

  bool init(std::string* error);
  bool ready() const { return m_program.valid(); }

  // Clears `target` (size×size) and draws the layers over the view [−range, range]².
  void render(const std::vector<PointLayer>& layers, float range, int size, RenderTarget& target);

 private:
  ShaderProgram m_program;
  GLuint m_vao = 0, m_vbo = 0;
};

// Rendered point pictures, redrawn only when their stamp (what they show) changes.
class PointCanvasCache {
 public:
  explicit PointCanvasCache(PointRenderer& renderer) : m_renderer(renderer) {}
  using MakeLayers = std::function<std::vector<PointLayer>()>;
  const RenderTarget& get(const std::string& name, uint64_t stamp, float range, int size,
                          const MakeLayers& make);
  // Drops every picture (a new model: nothing shown belongs to it yet).
  void clear() { m_entries.clear(); }

 private:
  struct Entry {
    RenderTarget target;
    uint64_t stamp = 0;
    float range = 0.0f;
    int size = 0;
  };
  PointRenderer& m_renderer;
  std::map<std::string, Entry> m_entries;
};

}  // namespace difflab
