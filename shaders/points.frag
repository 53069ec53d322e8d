// Round, softly edged points (gl_PointCoord) or plain lines, in one colour per draw.
#version 330 core

uniform vec4 u_color;
uniform int u_round;

out vec4 frag_color;

void main() {
  float alpha = u_color.a;
  if (u_round == 1) {
    vec2 d = gl_PointCoord - vec2(0.5);
    float r2 = dot(d, d);
    if (r2 > 0.25) discard;
    alpha *= 1.0 - smoothstep(0.16, 0.25, r2);
  }
  frag_color = vec4(u_color.rgb, alpha);
}
