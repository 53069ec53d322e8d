// Small RAII wrappers over OpenGL 3.3 core objects (through glad) and shader loading
// from shaders/. Only the GUI thread touches these.
#pragma once

#include <glad/gl.h>

#include <string>

#include "core/vision/png.h"

namespace difflab {

// The folder holding the GLSL files: $DIFFLAB_SHADER_DIR, else shaders/ next to the
// executable, else the source tree's shaders/ (DIFFLAB_SOURCE_DIR). Empty if none exists.
std::string shader_dir();
// The text of shaders/<name>; throws std::runtime_error naming the paths tried.
std::string read_shader(const std::string& name);

class ShaderProgram {
 public:
  ShaderProgram() = default;
  ~ShaderProgram();
  ShaderProgram(ShaderProgram&& other) noexcept;
  ShaderProgram& operator=(ShaderProgram&& other) noexcept;
  ShaderProgram(const ShaderProgram&) = delete;
  ShaderProgram& operator=(const ShaderProgram&) = delete;

  // Compiles and links shaders/<vertex> and shaders/<fragment>; throws with the GL log.
  static ShaderProgram from_files(const std::string& vertex, const std::string& fragment);

  GLuint id() const { return m_id; }
  bool valid() const { return m_id != 0; }
  GLint uniform(const char* name) const { return glGetUniformLocation(m_id, name); }

 private:
  GLuint m_id = 0;
};

// A 2-D texture with nearest filtering and clamped edges.
class Texture2D {
 public:
  Texture2D() = default;
  ~Texture2D();
  Texture2D(Texture2D&& other) noexcept;
  Texture2D& operator=(Texture2D&& other) noexcept;
  Texture2D(const Texture2D&) = delete;
  Texture2D& operator=(const Texture2D&) = delete;

  // (Re)allocates w×h storage of `internal_format` and uploads `data` (may be null).
  void upload(int width, int height, GLint internal_format, GLenum format, GLenum type,
              const void* data);

  GLuint id() const { return m_id; }
  int width() const { return m_width; }
  int height() const { return m_height; }
  // For ImGui::Image.
  void* imgui_id() const { return reinterpret_cast<void*>(static_cast<intptr_t>(m_id)); }

 private:
  GLuint m_id = 0;
  int m_width = 0, m_height = 0;
};

// An off-screen RGBA8 colour buffer to render into, then show with ImGui::Image.
class RenderTarget {
 public:
  RenderTarget() = default;
  ~RenderTarget();
  RenderTarget(RenderTarget&& other) noexcept;
  RenderTarget& operator=(RenderTarget&& other) noexcept;
  RenderTarget(const RenderTarget&) = delete;
  RenderTarget& operator=(const RenderTarget&) = delete;

  // Makes sure the buffer is w×h, binds it and sets the viewport to it.
  void bind(int width, int height);
  // Back to the window's framebuffer.
  static void unbind();
  // The pixels (top row first, as drawn with uv (0,0) at the top-left), RGB.
  Image8 read_pixels() const;

  const Texture2D& texture() const { return m_color; }
  int width() const { return m_color.width(); }
  int height() const { return m_color.height(); }

 private:
  GLuint m_fbo = 0;
  Texture2D m_color;
};

// The window's framebuffer as an RGB image, top row first (for screenshots).
Image8 read_framebuffer(int width, int height);

}  // namespace difflab
