import Foundation

/// Test-only: holds a checkpoint write open so a fault can be injected inside it.
///
/// `TRANSFORMER_TEST_CHECKPOINT_PAUSE_SECONDS=S` makes every checkpoint write sleep S seconds after
/// `model.safetensors` is written into the `.tmp-*` directory and before the optimizer state,
/// `state.json` and the rename. `Scripts/chaos` sets it to kill -9 the coordinator inside that
/// window reliably (a copy-sized checkpoint is otherwise written in milliseconds). Unset (always,
/// outside tests) it costs one environment lookup per checkpoint and changes nothing.
enum CheckpointTestHook {
    static let variable = "TRANSFORMER_TEST_CHECKPOINT_PAUSE_SECONDS"

    static func pauseInsideWrite() {
        guard let text = ProcessInfo.processInfo.environment[variable], let seconds = Double(text), seconds > 0 else {
            return
        }
        Thread.sleep(forTimeInterval: seconds)
    }
}
