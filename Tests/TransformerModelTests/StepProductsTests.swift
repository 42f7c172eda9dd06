import TransformerModel
import XCTest

final class StepProductsTests: XCTestCase {
    /// A config small enough to count by hand: V 10, D 4, 2 heads of width 2, d_ff 8, 2 encoder
    /// layers, 1 decoder layer; 2 sequences of 3 source and 5 target tokens (n = 6, m = 10 rows).
    /// Lengths differ and layer counts differ, so a swap of either shows.
    func testHandCountOfATinyStep() {
        let c = ModelConfig(vocabSize: 10, dModel: 4, heads: 2, dFF: 8, encoderLayers: 2, decoderLayers: 1)
        let p = StepProducts(config: c, batch: 2, sourceLength: 3, targetLength: 5)
        // Encoder layer, forward (2 m n k each):
        //   Q/K/V  2*6*4*12 = 576; Q K^T 2 seq * 2 heads * 2*3*3*2 = 144; P V 144;
        //   out_proj 2*6*4*4 = 192; linear1 2*6*4*8 = 384; linear2 384           -> 1824
        // Decoder layer, forward:
        //   self: Q/K/V 2*10*4*12 = 960; Q K^T 2*2*2*5*5*2 = 400; P V 400; out 2*10*4*4 = 320 -> 2080
        //   cross: Q 320; K/V from memory 2*6*4*8 = 384; Q K^T 2*2*2*5*3*2 = 240; P V 240; out 320 -> 1504
        //   feed-forward 2 * 2*10*4*8 = 1280                                     -> 4864
        // Output projection 2*10*4*10 = 800.
        // Forward 2*1824 + 4864 + 800 = 9312; backward twice that, 18624; step 27936.
        XCTAssertEqual(p.forwardFLOPs, 9312)
        XCTAssertEqual(p.backwardFLOPs, 18624)
        XCTAssertEqual(p.totalFLOPs, 27936)
        XCTAssertEqual(p.products.filter { $0.name == "output projection" }.map(\.flops), [800])
        XCTAssertEqual(p.products.filter { $0.name == "decoder multihead_attn QK^T" }.map(\.flops), [240])
        XCTAssertEqual(p.products.filter { $0.name == "encoder self_attn QK^T" }.map(\.count), [2 * 2 * 2])
    }

    /// Backward is exactly twice forward per product group (dW and dx per Linear, four per-head
    /// products for two), and the shapes of each dW / dx are the forward's transposes.
    func testBackwardMirrorsForward() {
        let c = ModelConfig(vocabSize: 8000, dModel: 512, heads: 8, dFF: 2048, encoderLayers: 6, decoderLayers: 6)
        let p = StepProducts(config: c, batch: 64, sourceLength: 32, targetLength: 32)
        XCTAssertEqual(p.backwardFLOPs, 2 * p.forwardFLOPs)
        XCTAssertEqual(p.totalFLOPs, 598_745_284_608)  // base, 64 x (32 + 32): the "about 592 + attention"
        let projection = p.products.filter { $0.name.hasPrefix("output projection") }.map(\.shape)
        XCTAssertEqual(
            projection,
            [
                GemmShape(transB: true, m: 2048, n: 8000, k: 512),
                GemmShape(transA: true, m: 8000, n: 512, k: 2048),
                GemmShape(m: 2048, n: 512, k: 8000),
            ])
    }
}
