/**
 * Kernels fhenet registers on the tfjs WASM backend to fill its gaps (see docs/ARCHITECTURE.md).
 * Placeholder until the convolution-gradient kernels land: registers nothing.
 */
let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
}
