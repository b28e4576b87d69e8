//! Choosing the device (`--device`).

use anyhow::{Context, Result, bail};
use candle_core::Device;

/// The device for `spec` (`cpu`, `cuda` or `auto`) and its name for `config.json`.
pub fn select(spec: &str) -> Result<(Device, &'static str)> {
    match spec {
        "cpu" => Ok((Device::Cpu, "cpu")),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                bail!(
                    "--device cuda: this vgrad was built without CUDA; rebuild with `--features cuda`, or use --device cpu"
                );
            }
            let device = Device::new_cuda(0).context("--device cuda: no CUDA GPU answered")?;
            Ok((device, "cuda"))
        }
        "auto" => {
            if candle_core::utils::cuda_is_available()
                && let Ok(device) = Device::new_cuda(0)
            {
                tracing::info!("--device auto: using CUDA GPU 0");
                return Ok((device, "cuda"));
            }
            tracing::info!("--device auto: using the CPU");
            Ok((Device::Cpu, "cpu"))
        }
        other => bail!("--device `{other}`: expected cpu, cuda or auto"),
    }
}
