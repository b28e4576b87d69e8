//! Choosing the device (`--device`).

use anyhow::{Context, Result, bail};
use candle_core::Device;
use vgrad_record::DeviceChoice;

/// The device `choice` names, and which one it is (`auto` resolved) for `config.json`.
pub fn select(choice: DeviceChoice) -> Result<(Device, DeviceChoice)> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, DeviceChoice::Cpu)),
        DeviceChoice::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                bail!(
                    "--device cuda: this vgrad was built without CUDA; rebuild with `--features cuda`, or use --device cpu"
                );
            }
            let device = Device::new_cuda(0).context("--device cuda: no CUDA GPU answered")?;
            Ok((device, DeviceChoice::Cuda))
        }
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available()
                && let Ok(device) = Device::new_cuda(0)
            {
                tracing::info!("--device auto: using CUDA GPU 0");
                return Ok((device, DeviceChoice::Cuda));
            }
            tracing::info!("--device auto: using the CPU");
            Ok((Device::Cpu, DeviceChoice::Cpu))
        }
    }
}
