// Colormap pass: one output pixel per input texel (the viewport is the texture's size).
//   u_mode 0 (image):     values in [-1, 1] -> grey (1 channel) or RGB (3 channels)
//   u_mode 1 (diverging): values in [-u_range, u_range] -> blue, white at 0, red
// Texels below u_pad_threshold are grid padding and get the background colour.
#version 330 core

uniform sampler2D u_image;
uniform int u_mode;
uniform int u_channels;
uniform float u_range;
uniform float u_pad_threshold;

out vec4 frag_color;

const vec3 kBackground = vec3(0.09, 0.10, 0.12);

// Five stops of a blue-white-red scale, evenly spaced over [-1, 1].
vec3 diverging(float x) {
  const vec3 stops[5] = vec3[5](vec3(0.05, 0.19, 0.42), vec3(0.33, 0.60, 0.82),
                                vec3(0.96, 0.96, 0.96), vec3(0.87, 0.42, 0.32),
                                vec3(0.45, 0.03, 0.12));
  float s = clamp(x, -1.0, 1.0) * 2.0 + 2.0;  // 0 .. 4
  int i = int(min(floor(s), 3.0));
  return mix(stops[i], stops[i + 1], s - float(i));
}

void main() {
  vec4 texel = texelFetch(u_image, ivec2(gl_FragCoord.xy), 0);
  if (texel.r < u_pad_threshold) {
    frag_color = vec4(kBackground, 1.0);
    return;
  }
  vec3 rgb;
  if (u_mode == 1) {
    rgb = diverging(texel.r / u_range);
  } else if (u_channels == 3) {
    rgb = clamp(texel.rgb * 0.5 + 0.5, 0.0, 1.0);
  } else {
    rgb = vec3(clamp(texel.r * 0.5 + 0.5, 0.0, 1.0));
  }
  frag_color = vec4(rgb, 1.0);
}
