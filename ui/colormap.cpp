#include "ui/colormap.h"

#include <exception>

namespace difflab {

ColormapRenderer::~ColormapRenderer() {
  if (m_vao) glDeleteVertexArrays(1, &m_vao);
}

bool ColormapRenderer::init(std::string* error) {
  try {
    m_program = ShaderProgram::from_files("colormap.vert", "colormap.frag");
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
  glGenVertexArrays(1, &m_vao);
  return true;
}

void ColormapRenderer::render(const FloatPlane& plane, Colormap map, float range,
                              RenderTarget& target) {
  if (!ready() || plane.empty()) return;
  const bool rgb = plane.channels == 3;
  m_source.upload(plane.width, plane.height, rgb ? GL_RGB32F : GL_R32F, rgb ? GL_RGB : GL_RED,
                  GL_FLOAT, plane.data.data());
  target.bind(plane.width, plane.height);
  glDisable(GL_BLEND);
  glDisable(GL_SCISSOR_TEST);
  glDisable(GL_DEPTH_TEST);
  glUseProgram(m_program.id());
  glActiveTexture(GL_TEXTURE0);
  glBindTexture(GL_TEXTURE_2D, m_source.id());
  glUniform1i(m_program.uniform("u_image"), 0);
  glUniform1i(m_program.uniform("u_mode"), static_cast<int>(map));
  glUniform1i(m_program.uniform("u_channels"), plane.channels);
  glUniform1f(m_program.uniform("u_range"), range > 0.0f ? range : 1.0f);
  glUniform1f(m_program.uniform("u_pad_threshold"), kPadThreshold);
  glBindVertexArray(m_vao);
  glDrawArrays(GL_TRIANGLES, 0, 3);
  glBindVertexArray(0);
  glUseProgram(0);
  RenderTarget::unbind();
}

}  // namespace difflab
