//! Mean-field theory of signal propagation through a deep fully connected network at
//! initialisation (Poole et al. 2016, "Exponential expressivity in deep neural networks
//! through transient chaos"; Schoenholz et al. 2017, "Deep information propagation"),
//! computed from first principles: from the activation and the weight and bias variances
//! alone, with no tensor library and no quantity measured from a run. What a run
//! measures can then be set against what the theory predicts.
//!
//! The convention is that of the papers: every layer draws W_ij ~ N(0, sigma_w^2 /
//! fan_in) and b_i ~ N(0, sigma_b^2). In an infinitely wide network a layer's
//! pre-activations are then Gaussian with a variance q_l that follows the length map
//! q_{l+1} = sigma_w^2 E[phi(sqrt(q_l) Z)^2] + sigma_b^2 (Z ~ N(0, 1)), and deep in the
//! network q sits at the map's fixed point q*.
//!
//! chi_1 = sigma_w^2 E[phi'(sqrt(q*) Z)^2] is the factor by which the mean square of the
//! back-propagated error changes per layer, from layer l+1 to layer l, in that network
//! at its fixed point: below 1 the error vanishes geometrically with depth, above 1 it
//! explodes, and at 1 (the edge of chaos) it keeps its size.
//!
//! [`quadrature`] holds the expectations over Gaussians every map needs; [`mean_field`]
//! the length map, its fixed point, chi_1, and the sigma_w^2 of vgrad's inits;
//! [`depth_scales`] the correlation map, its fixed point c* and slope chi_c, the depth
//! scales xi_q and xi_c, and the critical line where chi_1 = 1; [`phase_diagram`] all of
//! them over a grid of (sigma_w^2, sigma_b^2); [`residual`] the forward growth of residual
//! ReLU networks per block.

#![forbid(unsafe_code)]

pub mod depth_scales;
pub mod mean_field;
pub mod phase_diagram;
pub mod quadrature;
pub mod recurrent;
pub mod residual;

pub use depth_scales::{
    DepthScales, critical_bias_variance, critical_weight_variance, depth_scale,
};
pub use mean_field::{
    FixedPoint, InvalidVariance, MeanField, NoCriticalBias, is_positively_homogeneous,
    run_bias_variance, run_chi1, weight_variance,
};
pub use phase_diagram::phase_diagram;
pub use quadrature::{
    DEFAULT_NODES, GaussHermite, HermiteSeries, expect_normal, expect_normal_pair,
};
