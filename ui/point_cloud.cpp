#include "ui/point_cloud.h"

#include <exception>

namespace difflab {

PointRenderer::~PointRenderer() {
  if (m_vbo) glDeleteBuffers(1, &m_vbo);
  if (m_vao) glDeleteVertexArrays(1, &m_vao);
}

bool PointRenderer::init(std::string* error) {
  try {
    m_program = ShaderProgram::from_files("points.vert", "points.frag");
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
  glGenVertexArrays(1, &m_vao);
  glGenBuffers(1, &m_vbo);
  glBindVertexArray(m_vao);
  glBindBuffer(GL_ARRAY_BUFFER, m_vbo);
  glEnableVertexAttribArray(0);
  glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 2 * sizeof(float), nullptr);
  glBindVertexArray(0);
  glBindBuffer(GL_ARRAY_BUFFER, 0);
  return true;
}

void PointRenderer::render(const std::vector<PointLayer>& layers, float range, int size,
                           RenderTarget& target) {
  if (!ready() || size <= 0) return;
  target.bind(size, size);
  glDisable(GL_SCISSOR_TEST);
  glDisable(GL_DEPTH_TEST);
  glClearColor(0.09f, 0.10f, 0.12f, 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);
  glEnable(GL_BLEND);
  glBlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
  glEnable(GL_PROGRAM_POINT_SIZE);

  size_t total = 0;
  for (const auto& layer : layers) total += layer.xy.size();
  glBindVertexArray(m_vao);
  glBindBuffer(GL_ARRAY_BUFFER, m_vbo);
  glBufferData(GL_ARRAY_BUFFER, static_cast<GLsizeiptr>(total * sizeof(float)), nullptr,
               GL_STREAM_DRAW);
  size_t offset = 0;
  for (const auto& layer : layers) {
    if (!layer.xy.empty())
      glBufferSubData(GL_ARRAY_BUFFER, static_cast<GLintptr>(offset * sizeof(float)),
                      static_cast<GLsizeiptr>(layer.xy.size() * sizeof(float)), layer.xy.data());
    offset += layer.xy.size();
  }

  glUseProgram(m_program.id());
  const float scale = range > 0.0f ? 1.0f / range : 1.0f;
  glUniform2f(m_program.uniform("u_scale"), scale, scale);
  glUniform2f(m_program.uniform("u_offset"), 0.0f, 0.0f);
  const GLint color = m_program.uniform("u_color"), point_size = m_program.uniform("u_point_size"),
              round = m_program.uniform("u_round");
  GLint first = 0;
  for (const auto& layer : layers) {
    const auto count = static_cast<GLsizei>(layer.xy.size() / 2);
    if (count > 0) {
      glUniform4f(color, layer.color.x, layer.color.y, layer.color.z, layer.color.w);
      glUniform1f(point_size, layer.size);
      glUniform1i(round, layer.lines ? 0 : 1);
      glDrawArrays(layer.lines ? GL_LINES : GL_POINTS, first, count);
    }
    first += count;
  }
  glUseProgram(0);
  glBindVertexArray(0);
  glBindBuffer(GL_ARRAY_BUFFER, 0);
  glDisable(GL_PROGRAM_POINT_SIZE);
  glDisable(GL_BLEND);
  RenderTarget::unbind();
}

const RenderTarget& PointCanvasCache::get(const std::string& name, uint64_t stamp, float range,
                                          int size, const MakeLayers& make) {
  Entry& entry = m_entries[name];
  if (entry.target.width() == 0 || entry.stamp != stamp || entry.range != range ||
      entry.size != size) {
    m_renderer.render(make(), range, size, entry.target);
    entry.stamp = stamp;
    entry.range = range;
    entry.size = size;
  }
  return entry.target;
}

}  // namespace difflab
