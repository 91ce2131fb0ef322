//! The kernel self-test inside a browser: every WGSL entry point run through WebGPU against its CPU
//! twin compiled to WebAssembly, over the same shape ladder, tolerances and training-step cases as
//! `fmnist selftest` natively (`gpu::selftest::run_all`). `make web-test` runs it in headless Chromium
//! through wasm-bindgen's test runner (web/webdriver.json gives Chromium its WebGPU flags).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn every_kernel_matches_its_cpu_twin_in_the_browser() {
    let run = fmnist::gpu::selftest::run_all(None, 1)
        .await
        .unwrap_or_else(|e| panic!("the self-test could not run: {e:#}"));
    console_log!("Adapter: {}", run.adapter);
    let failed: Vec<String> = run
        .cases
        .iter()
        .filter(|c| !c.closeness.pass())
        .map(|c| c.line())
        .collect();
    console_log!(
        "selftest in the browser: {} of {} checks passed",
        run.cases.len() - failed.len(),
        run.cases.len()
    );
    // The ladder is fixed: fewer cases would mean a kernel went unchecked.
    assert!(
        run.cases.len() >= 1677,
        "only {} cases ran",
        run.cases.len()
    );
    assert!(
        failed.is_empty(),
        "{} kernels differ from their CPU twins beyond the tolerance in each line:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
