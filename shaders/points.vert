// 2-D point clouds (data, samples, trajectories): positions in data units from a VBO,
// mapped to clip space by a scale and an offset.
#version 330 core

layout(location = 0) in vec2 a_position;

uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_point_size;

void main() {
  gl_Position = vec4(a_position * u_scale + u_offset, 0.0, 1.0);
  gl_PointSize = u_point_size;
}
