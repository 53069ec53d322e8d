#include "ui/gl_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace difflab {

namespace fs = std::filesystem;

namespace {

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::vector<std::string> shader_dir_candidates() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("DIFFLAB_SHADER_DIR")) dirs.emplace_back(env);
  const std::string exe = executable_dir();
  if (!exe.empty()) {
    dirs.push_back(exe + "/shaders");
    dirs.push_back(exe + "/../share/difflab/shaders");
  }
#ifdef DIFFLAB_SOURCE_DIR
  dirs.push_back(std::string(DIFFLAB_SOURCE_DIR) + "/shaders");
#endif
  return dirs;
}

GLuint compile(GLenum kind, const std::string& source, const std::string& name) {
  const GLuint shader = glCreateShader(kind);
  const char* text = source.c_str();
  glShaderSource(shader, 1, &text, nullptr);
  glCompileShader(shader);
  GLint ok = 0;
  glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    GLint length = 0;
    glGetShaderiv(shader, GL_INFO_LOG_LENGTH, &length);
    std::string log(static_cast<size_t>(std::max(length, 1)), '\0');
    glGetShaderInfoLog(shader, length, nullptr, log.data());
    glDeleteShader(shader);
    throw std::runtime_error("shader " + name + " does not compile:\n" + log);
  }
  return shader;
}

}  // namespace

std::string shader_dir() {
  for (const auto& dir : shader_dir_candidates()) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return fs::weakly_canonical(dir, ec).string();
  }
  return {};
}

std::string read_shader(const std::string& name) {
  std::string tried;
  for (const auto& dir : shader_dir_candidates()) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      return text.str();
    }
    tried += "\n  " + path;
  }
  throw std::runtime_error("cannot find shader " + name + "; tried:" + tried);
}

// ---- ShaderProgram ----

ShaderProgram::~ShaderProgram() {
  if (m_id) glDeleteProgram(m_id);
}

ShaderProgram::ShaderProgram(ShaderProgram&& other) noexcept : m_id(std::exchange(other.m_id, 0)) {}

ShaderProgram& ShaderProgram::operator=(ShaderProgram&& other) noexcept {
  if (this != &other) {
    if (m_id) glDeleteProgram(m_id);
    m_id = std::exchange(other.m_id, 0);
  }
  return *this;
}

ShaderProgram ShaderProgram::from_files(const std::string& vertex, const std::string& fragment) {
  const GLuint vs = compile(GL_VERTEX_SHADER, read_shader(vertex), vertex);
  GLuint fs_id = 0;
  try {
    fs_id = compile(GL_FRAGMENT_SHADER, read_shader(fragment), fragment);
  } catch (...) {
    glDeleteShader(vs);
    throw;
  }
  ShaderProgram program;
  program.m_id = glCreateProgram();
  glAttachShader(program.m_id, vs);
  glAttachShader(program.m_id, fs_id);
  glLinkProgram(program.m_id);
  glDeleteShader(vs);
  glDeleteShader(fs_id);
  GLint ok = 0;
  glGetProgramiv(program.m_id, GL_LINK_STATUS, &ok);
  if (!ok) {
    GLint length = 0;
    glGetProgramiv(program.m_id, GL_INFO_LOG_LENGTH, &length);
    std::string log(static_cast<size_t>(std::max(length, 1)), '\0');
    glGetProgramInfoLog(program.m_id, length, nullptr, log.data());
    throw std::runtime_error("shaders " + vertex + " + " + fragment + " do not link:\n" + log);
  }
  return program;
}

// ---- Texture2D ----

Texture2D::~Texture2D() {
  if (m_id) glDeleteTextures(1, &m_id);
}

Texture2D::Texture2D(Texture2D&& other) noexcept
    : m_id(std::exchange(other.m_id, 0)),
      m_width(std::exchange(other.m_width, 0)),
      m_height(std::exchange(other.m_height, 0)) {}

Texture2D& Texture2D::operator=(Texture2D&& other) noexcept {
  if (this != &other) {
    if (m_id) glDeleteTextures(1, &m_id);
    m_id = std::exchange(other.m_id, 0);
    m_width = std::exchange(other.m_width, 0);
    m_height = std::exchange(other.m_height, 0);
  }
  return *this;
}

void Texture2D::upload(int width, int height, GLint internal_format, GLenum format, GLenum type,
                       const void* data) {
  if (!m_id) {
    glGenTextures(1, &m_id);
    glBindTexture(GL_TEXTURE_2D, m_id);
    // Nearest: pixels stay crisp when a 28×28 digit is shown at 4×.
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  } else {
    glBindTexture(GL_TEXTURE_2D, m_id);
  }
  glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
  glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
  glTexImage2D(GL_TEXTURE_2D, 0, internal_format, width, height, 0, format, type, data);
  m_width = width;
  m_height = height;
}

// ---- RenderTarget ----

RenderTarget::~RenderTarget() {
  if (m_fbo) glDeleteFramebuffers(1, &m_fbo);
}

RenderTarget::RenderTarget(RenderTarget&& other) noexcept
    : m_fbo(std::exchange(other.m_fbo, 0)), m_color(std::move(other.m_color)) {}

RenderTarget& RenderTarget::operator=(RenderTarget&& other) noexcept {
  if (this != &other) {
    if (m_fbo) glDeleteFramebuffers(1, &m_fbo);
    m_fbo = std::exchange(other.m_fbo, 0);
    m_color = std::move(other.m_color);
  }
  return *this;
}

void RenderTarget::bind(int width, int height) {
  if (!m_fbo) glGenFramebuffers(1, &m_fbo);
  glBindFramebuffer(GL_FRAMEBUFFER, m_fbo);
  if (m_color.width() != width || m_color.height() != height || !m_color.id()) {
    m_color.upload(width, height, GL_RGBA8, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, m_color.id(), 0);
  }
  glViewport(0, 0, width, height);
}

void RenderTarget::unbind() { glBindFramebuffer(GL_FRAMEBUFFER, 0); }

Image8 RenderTarget::read_pixels() const {
  Image8 image;
  image.width = width();
  image.height = height();
  image.channels = 3;
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  if (!m_fbo || image.pixels.empty()) return image;
  glBindFramebuffer(GL_FRAMEBUFFER, m_fbo);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  // Row 0 of the texture is the top of the picture as ImGui shows it (uv (0,0)).
  glReadPixels(0, 0, image.width, image.height, GL_RGB, GL_UNSIGNED_BYTE, image.pixels.data());
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  return image;
}

Image8 read_framebuffer(int width, int height) {
  Image8 image;
  image.width = width;
  image.height = height;
  image.channels = 3;
  const size_t row = static_cast<size_t>(width) * 3;
  std::vector<uint8_t> flipped(row * height);
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE, flipped.data());
  image.pixels.resize(flipped.size());
  for (int y = 0; y < height; ++y)  // GL's row 0 is the bottom of the window
    std::copy_n(flipped.data() + (height - 1 - y) * row, row, image.pixels.data() + y * row);
  return image;
}

}  // namespace difflab
