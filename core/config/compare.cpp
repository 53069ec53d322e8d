#include "core/config/config.h"

namespace difflab {

bool same_model(const Config& a, const Config& b) {
  const auto &m = a.model, &n = b.model;
  return m.kind == n.kind && m.base_channels == n.base_channels &&
         m.channel_mult == n.channel_mult && m.num_res_blocks == n.num_res_blocks &&
         m.attention_resolutions == n.attention_resolutions && m.num_heads == n.num_heads &&
         m.activation == n.activation && m.norm_groups == n.norm_groups && m.init == n.init &&
         m.zero_init_last == n.zero_init_last && m.class_conditional == n.class_conditional &&
         m.mlp_hidden == n.mlp_hidden && m.mlp_layers == n.mlp_layers &&
         m.dropout == n.dropout && a.diffusion.schedule == b.diffusion.schedule &&
         a.diffusion.timesteps == b.diffusion.timesteps &&
         a.diffusion.prediction == b.diffusion.prediction &&
         a.diffusion.learn_sigma == b.diffusion.learn_sigma &&
         a.diffusion.objective == b.diffusion.objective &&
         // EDM's σ_data sets its preconditioning, and σ_min/σ_max the network's time input.
         (a.diffusion.objective != Objective::Edm ||
          (a.diffusion.edm_sigma_data == b.diffusion.edm_sigma_data &&
           a.diffusion.edm_sigma_min == b.diffusion.edm_sigma_min &&
           a.diffusion.edm_sigma_max == b.diffusion.edm_sigma_max));
}

bool same_data(const DataConfig& a, const DataConfig& b) {
  return a.kind == b.kind && a.path == b.path && a.image_size == b.image_size &&
         a.channels == b.channels && a.test_fraction == b.test_fraction &&
         a.max_train == b.max_train && a.toy == b.toy && a.toy_points == b.toy_points &&
         a.toy_noise == b.toy_noise && a.seed == b.seed;
}

}  // namespace difflab
