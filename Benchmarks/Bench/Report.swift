import Foundation
import SegTTTKernels
import SegTTTReports
import Torch

/// The tables of docs/BENCHMARKS.md from both sides' results.
struct BenchmarkReport {
    /// Where the time of the step goes, what made the Swift step faster and what was tried and
    /// not kept: measured once by hand, with the commands in the text; not regenerated here.
    static let profile = """
        ## Where the time of the step goes

        ESPNet, from `/usr/bin/python3 Benchmarks/ocl_profile.py ops --threads 1` (torch.profiler,
        self CPU time, 3 steps) and `... convs` (each convolution of the step timed alone), on
        2026-11-22 with other jobs on the machine, so only the shares are meaningful:

        - Convolutions take 56 % of the step (backward 33 %, forward 23 %). Of the convolution
          time the dilated 3x3 convolutions of the ESP blocks take 37 %, the 1x1 convolutions
          25 % and the three 2x2 transposed convolutions of the decoder 18 %. libtorch sends the
          dilated 3x3 convolutions to oneDNN, but at one thread it sends the 1x1 convolutions to
          its slow im2col path and the transposed ones always there; their backward costs 5.9x
          and 8.6x their forward. SegTTT computes a transposed convolution whose kernel equals
          its stride as a 1x1 convolution to O s s channels and a reshuffle of the blocks (below),
          and now 2x2 ones, ESPNet's, in one kernel of its own.
        - Softmax, normalisation, the loss terms and the argmax over the 20 channels at full
          resolution take 13 %; additions and multiplications (the hierarchical sums of the
          ESP blocks, residuals, gradient accumulation) 11 %; BatchNorm 7 %, of which the BN
          prior's batch statistics (`torch.var_mean` in the script) are 5.7 %; autograd
          bookkeeping 4 %, PReLU 3 %, restoration 0.7 %, the SGD update 0.1 %.
        - At 2 threads (`ONEDNN_VERBOSE=1 segttt-bench --child config:espnet_480x360 --threads 2
          --repeats 1`, 2026-11-23) oneDNN's convolutions take 530 ms of the 1.25 s step and its
          reorders between PyTorch's NCHW layout and its blocked one 120 ms. The ESP blocks'
          dilated convolutions with 4, 12 or 25 channels, not multiples of 8, fall to oneDNN's
          im2col path (`x64:gemm:jit`), which takes half of that convolution time. `perf record`
          puts 12 % of the samples in OpenMP's spin-waiting between parallel regions and 13 % in
          the kernel (scheduling and page faults).
        - Later the same day (`perf record -F 999 segttt-bench --child config:espnet_480x360
          --threads 2 --repeats 5`, then `perf report --sort pid,dso`): a third busy thread,
          OpenBLAS's own worker, took 10 % of the samples, 7 % of them in the kernel's
          `sched_yield`, while OpenMP's two threads ran the convolutions; and the shim's fused
          kernels ran on the main thread only (their samples: 3.4 % on it, none on OpenMP's
          worker). Both are fixed below.

        SegTTT's own ESPNet step, per libtorch operator (`segttt-bench --child
        profile:espnet_480x360,shapes --threads 2 --repeats 4`: libtorch's profiler, self time
        per operator and input sizes, 4 steps after 2 plain and 4 profiled warm-up steps, no
        page faults in the profiled steps; 2026-11-23, 20:20, 3a9c1ee, 759 ms per step under
        the profiler on a machine then slower than the one of the tables):

        - Convolutions take about 520 ms, 70 % (backward 370, forward 150). The ESP blocks'
          dilated 3x3 convolutions with 25 channels at 45x60 take 179 ms, those with 12
          channels at 90x120 99 ms, the decoder's 3x3 convolution from 36 to 20 channels at
          180x240 60 ms (43 of them its backward).
        - The rest: the loss (libtorch's softmax 14 ms, the fused loss's forward 5 and backward
          13), the views' batch taken apart by `narrow` (whose backward fills two zero tensors of
          the whole batch's logits, 4 ms, and adds them, 4 ms), the reshuffle of the last
          transposed convolution (7 ms forward, 5 backward), the ESP blocks' concatenations
          (11 ms), the BN prior's statistics (libtorch's `batch_norm_update_stats`, 21 calls,
          24 ms), additions (22 ms), the input projections' average pooling (7 ms).
        - The profiler keeps its records until it stops; in a single profiled run they push
          the step's tensors onto fresh heap pages, 38 000-51 000 page faults per step, which
          then showed as 22 ms per zero fill of the logits. The profile child therefore
          profiles the steps twice and reports the second run, with its page faults.

        The same profile after SegTTT's convolution kernels (below), at b0851fc, 00:10 on
        2026-11-24, 260 ms per step under the profiler (without `shapes`; 2 page faults per
        step): the 3x3 kernel's 66 convolutions take 108 ms (forward 38, backward 69), 42 %
        of the step; the 2x2 transposed kernel's three 16 ms; libtorch's remaining 16
        convolutions 48 ms (forward 16, backward 32), 18 %. Of these (with `shapes`, 281 ms
        per step) the eight 1x1 reductions from 128 to 25 channels at 45x60 take 13 ms, the
        strided 3x3 convolution from 131 to 25 channels 12 ms, the 1x1 ones from 131 to 20
        and from 64 to 12 channels at 90x120 6 and 5 ms. Then additions (10 ms), the ESP
        blocks' concatenations (10 ms), BatchNorm + PReLU (19 ms), the loss (11 ms), the BN
        prior's statistics (5 ms).

        DeepLabV2-ResNet-101 at 512x256, 2 threads, on 2026-11-23, before the classifier change
        below: oneDNN's convolutions take 17.0 s of the step (forward 5.4 s, input gradient
        5.5 s, weight gradient 6.0 s) and its reorders 1.0 s (`ONEDNN_VERBOSE=1 segttt-bench
        --child config:deeplab_512x256 --threads 2 --repeats 1 > LOG`, then `python3
        Benchmarks/onednn_summary.py LOG`); `perf record` puts 80 % of the samples in oneDNN's
        generated kernels, 8 % in libtorch's own kernels and 4 % in the kernel. The backbone's
        convolutions run at about the matrix product's FLOP/s, in the same kernels as
        PyTorch's; the main head's two dilated convolutions with 19 outputs took 1.06 s in
        oneDNN's im2col path, 8-28 GFLOP/s.

        ## What made the Swift step faster

        Measured with `segttt-bench --child config:NAME --threads 2 --repeats R` on release builds
        before (commit 1398203) and after each change, the two builds run in turn; medians of the
        runs, 2026-11-23:

        - The BN prior's batch statistics by libtorch's batch-norm reduction
          (`torch.batch_norm_update_stats`, which also mixes them with the source statistics)
          instead of `torch.var_mean`: over all batch norms of a step 96 -> 31 ms for ESPNet and
          1048 -> 338 ms for DeepLabV2 512x256, equal within 1.7e-7 (`/usr/bin/python3
          Benchmarks/ocl_profile.py bn-stats --config NAME --threads 2`). Whole step: ESPNet
          1344 -> 1267 ms (3 runs each), DeepLabV2 512x256 20.8 -> 20.1 s (1 run each).
        - ReLU and the residual additions of ResNet's bottlenecks in place (as torchvision's
          `ReLU(inplace=True)`; no batch norm keeps its output for the backward), the ESP
          blocks' residual addition in place, and DeepLabV2's `logits` without the auxiliary
          head, which test-time training never reads: with the statistics change, DeepLabV2
          512x256 20.77 -> 19.24 s (2 runs each, -7.3 %) and its step's peak memory 3842-4149
          -> 3552-3635 MiB; ESPNet 1330 -> 1270 ms (3 runs each).
        - DeepLabV2's classifier head (its dilation-6 and -12 convolutions, 2048 -> 19 channels,
          summed) as one matrix product over the 17 distinct tap offsets inside the map, then
          shifted additions: forward and backward of the head at the 512x256 step's shape take
          678 ms against 1628 ms for the two convolutions, outputs equal within 2.7e-6
          (`/usr/bin/python3 Benchmarks/ocl_profile.py classifier --config deeplab_512x256
          --threads 2 --repeats 7`, the same computation in PyTorch, interleaved, at 07:55 on
          2026-11-23 while the machine ran its matrix product at 44 GFLOP/s instead of 70.5:
          only the ratio counts).
        - OCL's loss as one fused kernel with its own backward pass (`contrastive.cpp`: libtorch's
          softmax, then one pass that reduces to pos and the view means, and one backward pass
          that writes dL/dz, instead of about twenty passes and their autograd nodes): ESPNet
          step 1186 -> 1030 ms by the medians of 8 runs of each build (681ed8b against 6d68210,
          in turn), peak memory 939-1019 -> 855-886 MiB, loss equal within 3.6e-7 of
          PyTorch's.
        - The frame's prediction (argmax over the classes of the views' mean logits) by
          libtorch's max over that dimension, which returns the same indices, instead of its
          argmax, which is 4-5x slower over a dimension that is not the innermost: 42.9 -> 3.5
          ms for ESPNet, 107 -> 11.6 ms at 1024x512 (`/usr/bin/python3 Benchmarks/ocl_profile.py
          prediction --config NAME --threads 2 --repeats 15`).
        - ESPNet's BatchNorm + PReLU pairs as one fused kernel with its own backward pass
          (`batch_norm_prelu.cpp`, where the statistics carry no gradient: running or BN
          prior): one pass over the input forward and one backward, against two and four or
          more for the pair of libtorch ops, and one saved tensor instead of two. The three
          changes together, 681ed8b against cdd1bf0, 4 runs each in turn: ESPNet step 1278 ->
          1043 ms (-18 %), peak memory 939-1019 -> 752-768 MiB.
        - OpenBLAS at one thread (`Runtime.blasThreads`, unless OPENBLAS_NUM_THREADS is set).
          Debian's OpenBLAS keeps a pthread pool of its own next to OpenMP's, and after every
          matrix product its workers spin in `sched_yield` on the cores that OpenMP's threads
          need. ESPNet step 1140 -> 1033 ms (medians of 4 runs each, in turn, one build with
          OPENBLAS_NUM_THREADS=2 and without), the kernel's share of the samples 15 % -> 5 %,
          loss the same bits; DeepLabV2 512x256 (`--repeats 2`, 2 runs each) 20.08 and 19.25 s
          -> 19.47 and 19.38 s, no change. The PyTorch script gains the same way when it is
          given OPENBLAS_NUM_THREADS=1 (ESPNet 1446-1458 -> 1225-1256 ms, `ocl_step.py --only
          espnet_480x360 --threads 2 --repeats 5`, 2 runs each), but the published code does
          not set it, so the step table leaves PyTorch as it starts. With both sides at one
          OpenBLAS thread, `OPENBLAS_NUM_THREADS=1 segttt-bench --threads 2 --only espnet_480x360
          --rounds 5 --fresh --output OTHER --cache OTHER` gave 923.7 against 1278.0 ms, 0.72
          (per round 0.71-0.76), on the earlier machine, right after its 16:35 run.
        - Transposed convolutions whose kernel equals their stride (ESPNet's decoder) as
          oneDNN's 1x1 convolution to O s s channels and a reshuffle, instead of an OpenBLAS
          product [O s s, C] x [C, H W], which reaches about 7 GFLOP/s at C = 20: forward and
          backward at 2 x 20 x 180 x 240, 68.5 against 103.3 ms, and 0.80 of the product's time
          in a second run (`/usr/bin/python3 Benchmarks/conv_paths.py --threads 2`: oneDNN on two
          threads, OpenBLAS on one, as in SegTTT's step). ESPNet step 1041 -> 979 ms (medians of 4 runs
          each, c42c87a against 58a51bf, in turn), same loss. ESPNet's 2x2 ones have since gone
          to a kernel of their own (below).
        - The shim's parallel loops on OpenMP's threads. libtorch's `at::parallel_for` is a
          header template whose `#pragma omp parallel` is compiled into the caller, and only
          where the caller is compiled with OpenMP; the shim is not, because the Swift
          toolchain's clang would emit calls to LLVM's OpenMP runtime, not to the libgomp that
          libtorch runs on. So in the shim it ran serially. The shim now calls libgomp's
          `GOMP_parallel` itself (`parallel.cpp`). The fused kernels' samples
          now split 1.9 % / 1.7 % between the two threads, and OpenMP's worker waits 6.2 % of
          the samples instead of 9.5 %. No gain in the step time was measured: 58a51bf (serial
          loops) against this change, 4 runs each in turn on the later machine below, gave
          766-867 (median 815) against 636-833 (median 792) ms, the same loss.
        - glibc's allocator set to keep freed memory (`Runtime.keepsFreedMemory`: mmap
          threshold at its 32 MiB ceiling, no trimming of the heap). Under its defaults the
          activations and gradients of every step, freed at its end, went back to the system
          and were faulted in again at the next. On the later machine below, 6 runs each in
          turn (`/usr/bin/time` around `segttt-bench --child config:espnet_480x360 --threads 2
          --repeats 5`, f2f40a0 against 7dbd021): ESPNet step 515-688 (median 540) -> 448-529
          (median 474) ms, minor faults 320 000-400 000 -> 148 000-164 000, system time
          1.0-1.35 -> 0.6 s, peak memory 707-755 MiB both, the same loss. The caching
          allocator and tcmalloc below had been tried on DeepLabV2 only, whose step is bound
          by its convolutions.

        - Seven changes from the operator profile above, each measured by the same profile of
          the builds before and after it, three runs of each in turn (`segttt-bench --child
          profile:espnet_480x360[,shapes] --threads 2 --repeats 4`; 3a9c1ee against 1d7d514
          and f9170ef, f9170ef against 8d69ff8 and ce765ff, ce765ff against f2f7e5a;
          2026-11-23, 20:25-21:50):
          - The views' logits taken apart by `unbind` and put together by `stack`, whose
            backward is one copy: the two zero fills of the whole batch's logits and their sum
            are gone (fills 4.1-4.5 -> 0.7 ms, additions 22.5-24.0 -> 19.5-20.6 ms).
          - ESPNet's 1/4 input projection pooled from the 1/2 one instead of twice from the
            image, as the published code does: average pooling 3 calls, 4.5-5.9 ms -> 2 calls,
            3.8 ms; the same values.
          - OCL's softmax computed tile by tile inside the fused loss (a Cephes polynomial
            exponential in plain float code that the compiler vectorises, compiled also for
            AVX2 and chosen at run time), instead of libtorch's softmax over the channels of
            an NCHW tensor: the loss's forward pass 13.1-18.1 -> 7.9-10.7 ms.
          - The BN prior's statistics by SegTTT's own kernel (`batch_norm_stats.cpp`, two
            passes per channel summed in double, channels split between the threads):
            24.1-24.3 -> 6.9-7.6 ms. In PyTorch, over the same 21 inputs, libtorch's
            `batch_norm_update_stats` takes 25.4 ms where a plain sum over the same values takes
            4.5 ms (`/usr/bin/python3 Benchmarks/ocl_profile.py bn-stats --threads 2 --repeats
            30`, 22:15).
          - The blocks of the transposed convolutions put into place by SegTTT's block-shuffle
            kernel (`block_shuffle.cpp`: each output row written from its two block rows in one
            pass, with its own backward) instead of libtorch's copy behind a reshape, permute
            and reshape, whose innermost dimension has 2 elements: forward, the last layer's
            copy alone 8.7-9.7 ms -> all three layers 3.8-5.4 ms; backward 5.2-8.0 -> 2.9 ms.
          - The frame's prediction, the argmax over the classes of the views' mean logits, by
            SegTTT's kernel (`argmax.cpp`: tiles of 256 pixels compared class by class) instead
            of libtorch's max over the classes: 2.5-4.9 -> 1.9-3.1 ms.
          - The fused loss's work per tile, forward and backward, in functions compiled also
            for AVX2 and chosen at run time (`target_clones`; the rest of the shim is compiled
            for the baseline x86-64, SSE2): forward 7.6-11.8 -> 7.5-8.9 ms, backward 7.6-13.5
            -> 6.3-7.9 ms. The same for the BatchNorm + PReLU kernel's planes gave nothing
            (forward 6.7-11.1 against 6.6-7.4 ms, backward 12.3-25.5 against 10.9-13.0 ms):
            that kernel waits on memory; not kept.
          The whole step, 3a9c1ee against 1d7d514 (the first three), 12 runs of each in turn
          (`segttt-bench --child config:espnet_480x360 --threads 2 --repeats 5`): median 715
          -> 672 ms, fastest 580 -> 492 ms; 3a9c1ee against f9170ef (the first four), 8 runs
          each: median 686 -> 683 ms, fastest 639 -> 571 ms. The machine's speed swung by a
          third between runs, more than these changes move the step.
          The loss moved by 2.2e-7 with the statistics kernel (-1.64118397 -> -1.64118433;
          PyTorch's -1.64118373).
        - ESPNet's 3x3 convolutions with stride 1 and padding equal to their dilation, with
          4 to 36 channels, by SegTTT's kernel (`dilated_conv.cpp`, `dilatedConv3x3`; `conv2d`
          takes it for at most 36 channels in and out, not all multiples of 8). oneDNN sends
          those with 4 to 28 channels to its im2col path, 40-46 GFLOP/s on two threads in the
          step. The kernel copies the input's rows once with d_w zero columns on either side
          and accumulates each output row in AVX2 registers, 3 to 5 output channels by 16 or
          24 columns at a time (so that the accumulators, the input vectors and a broadcast
          weight fit the 16 vector registers: at 4 by 24 the compiler spilled accumulators to
          the stack inside the loop), the blocks of outputs of one row one after the other so
          that its input rows stay in cache, skipping the taps whose source row is outside
          the image; dx is the same convolution of dy with the weight transposed and flipped;
          dw passes over pieces of at least 16 rows, 3 output channels by the 3 column taps in
          registers, and adds the pieces' sums in double, in a fixed order. Forward and
          backward against libtorch's (`segttt-bench --child convs --threads 2 --repeats 15`,
          b0851fc, 00:15 on 2026-11-24): 25 channels at 45x60, dilation 2 and 16, 1.54
          against 2.73 ms and 1.41 against 3.10 (118-129 GFLOP/s); 25 to 28 channels 1.61
          against 2.51; 12 channels at 90x120, dilation 4, 1.81 against 4.88; 12 to 16 2.16
          against 3.02; 4 channels 0.38 against 1.12; the decoder's 19 to 12 channels at
          180x240 10.6 against 16.9 and 36 to 20 channels 28.7 against 38.7 ms (forward alone
          10.2 against 10.6). With 32 to 128 channels, multiples of 8, where oneDNN runs its
          direct kernels, 0.95-1.12x forward and backward and 1.16-1.25x forward alone: those
          stay with libtorch. Outputs within 1.6e-5 of libtorch's at the step's shapes, and in the
          tests within 2e-6 of the largest value of libtorch's float64 convolution. The whole
          step (`segttt-bench --child config:espnet_480x360 --threads 2 --repeats 5`, the
          builds in turn): the kernel for 4 to 28 channels, 56f737e against f40ef99, 8 runs
          each (23:14): median 594 -> 473 ms, fastest 397 -> 312 ms, every pair faster, the
          loss -1.64118433 -> -1.64118409 (PyTorch's -1.64118373); the kernel's rows in
          cache order and the decoder's convolution from 36 channels, fff3f14 against
          b035714, 12 runs each (23:59): 265 -> 254 ms, every pair faster; the weight
          gradient by pieces of rows, b035714 against b0851fc, 12 runs each (00:09 on
          2026-11-24): 254 -> 249 ms, 11 of 12 pairs faster (in a first try, with pieces of
          4 rows and lane sums added one by one, 296 -> 389 ms: not kept).
        - ESPNet's 2x2 stride-2 transposed convolutions by SegTTT's kernel
          (`conv_transpose2x2.cpp`, `convTranspose2x2`), in place of oneDNN's 1x1 convolution
          to 4 O channels and the block shuffle: each output row accumulated in registers, 3
          output channels by 16 input columns, its two column taps interleaved on the way
          out; dy's rows split into even and odd columns on the way in, the rows of dx's
          blocks of 4 input channels one after the other so that dy's rows stay in cache
          (in the other order dy was read from memory once per block); the weight gradient
          summed per range of rows. Against the path it replaces (the same command), forward
          and backward at 2 x 20 channels: 45x60 1.01 against 1.27 ms, 90x120 3.02 against
          4.53, 180x240 16.6 against 26.1 (forward alone 3.7 against 8.7); the outputs equal to
          the last bit (both sum the channels in order). The whole
          step, 730bd89 against fff3f14, 20 runs each in two series (23:43): medians 303 ->
          303 and 317 -> 297 ms, 14 of 20 pairs faster, the same loss to the last bit; the
          step's peak memory 696 -> 643 MiB in the tables' runs.
        The figures above before the glibc change came from an earlier machine; the rest, and
        every row of the tables, from an AMD EPYC with 2 cores and AVX2 on which the DeepLabV2
        512x256 step takes 10-12 s instead of 18.5 s and the 2048x2048 product runs at 129-140
        GFLOP/s on two threads instead of 70-72. The tables' rows, all on 2026-11-23 but the
        first: espnet at b0851fc, 00:15-00:18 on 2026-11-24, 11 rounds (before the
        convolution kernels, at 0bb6654, 22:00-22:04, 11 rounds: 0.50, 561.1 against 1123.4
        ms, per round 0.38-0.64; with the 3x3 kernel alone, at 4f8fd46, 23:02, 7 rounds: 0.38,
        469.0 against 1230.0 ms, per round 0.31-0.46, and at f40ef99, 23:07, 11 rounds: 0.37,
        410.9 against 1124.3 ms, per round 0.31-0.45; with the transposed kernel too, at
        fff3f14, 23:45, 11 rounds: 0.38, 371.7 against 988.0 ms, per round 0.26-0.46);
        deeplab_512x256 at f9170ef (before the block shuffle,
        which it does not use, and the argmax kernel), 20:56-21:03, 3 rounds; deeplab_1024x512
        and the memory tables at ce765ff, 21:18-21:28, 1 round; the negative term and the
        matrix product at 7a9f24c, 18:33-18:59. On this machine the speed moves by a third
        within minutes, PyTorch's step and Swift's not always together, so the espnet ratio
        moves by several hundredths between runs of the same build: at ce765ff 0.55 (709.1
        against 1287.4 ms, per round 0.51-0.65, 21:15) and 0.55 (623.8 against 1130.2 ms, per
        round 0.48-0.59, 21:31) with 7 rounds, and 0.49 (519.5 against 1057.8 ms, per round
        0.41-0.64, 21:35) with 11; at f9170ef 0.48 (575.8 against 1200.1
        ms, per round 0.42-0.60, 20:53); at 7a9f24c, before the changes of the evening, 0.54
        (485 against 897 ms, 18:33) and 0.56 (748 against 1332 ms, per round 0.53-0.57,
        20:01). The last two changes, the block shuffle and the argmax kernel, f9170ef against
        ce765ff, 8 runs each in turn (`segttt-bench --child config:espnet_480x360 --threads 2
        --repeats 5`, 21:34): median 555 -> 481 ms, fastest 530 -> 429 ms, every pair faster.
        With both sides at one OpenBLAS thread (`OPENBLAS_NUM_THREADS=1 segttt-bench --threads
        2 --only espnet_480x360 --rounds 5 --fresh --output OTHER --cache OTHER`), before the
        glibc change: 0.74 and 0.67; with both sides' glibc set as SegTTT sets it
        (`MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647` in front of the
        same command), after it: 0.54 (518 against 953 ms). The matrix product runs OpenBLAS on
        the benchmark's thread count in both processes: SegTTT's one-thread pin would otherwise
        halve the reference rate. Swift's step with the Gram form at stride 4 peaked at
        13692-14667 MiB in the runs after the glibc change against 13634 MiB before it: with
        the heap never trimmed, the blocks it frees stay in the process.

        ## Tried and not kept

        - ESPNet's ESP blocks with their five dilated convolutions on a channels-last copy of
          the block's reduced features (`ocl_profile.py variants --threads 2 --repeats 9 --only
          branches_nhwc,branches_nhwc_64`, 2026-11-23): 1.032 and 1.037 of the plain step by the
          median, 0.93 and 0.89 by the fastest run; alone, oneDNN's channels-last kernels were
          faster for the 12-channel convolutions at 90x120 and no faster for the 25-channel
          ones. Not taken.
        - ESPNet (`ocl_profile.py variants`, interleaved in one process, loss equal within
          2.4e-7): channels-last memory format (7-15 % slower), dilated convolutions as
          space-to-batch (2-22 % slower), oneDNN off (2.1x slower), foreach SGD and in-place
          gradient zeroing (within noise).
        - ESPNet, the convolutions whose channel counts are not multiples of 8 padded with zero
          channels up to them, so that oneDNN takes its direct kernels instead of im2col
          (`ocl_profile.py variants --threads 2 --repeats 7 --only padded_channels`, 2026-11-23,
          with another job on the machine): 26 % slower by the median, 14 % by the fastest run,
          loss equal within 4.8e-7. At these sizes the direct kernels are no faster per
          channel than the im2col path: the padded channels are pure extra work.
        - DeepLabV2 512x256 (`ocl_profile.py variants --config deeplab_512x256 --threads 2
          --repeats 3 --only NAME`): channels-last 20 % slower, 1x1 convolutions as matrix
          products 36 % slower.
        - Other allocators (`LD_PRELOAD` on `segttt-bench --child config:deeplab_512x256
          --threads 2 --repeats 3`): tcmalloc cut the process's system time from 6.9 s to 1.7 s
          but left the step at 19.3 s against glibc's 19.1 s; jemalloc made it 21.9 s.
        - A caching CPU allocator in the shim (buffers of 128 KiB or more kept by size and
          handed out again), measured on 2026-11-23 with `/usr/bin/time` around `segttt-bench
          --child gram-step:NAME,16 --threads 1 --repeats R` for R = 1 and 2: glibc maps
          buffers above its mmap threshold afresh at every step, so the DeepLabV2 512x256 step
          takes 340 000 minor page faults and 1.5 s of system time out of 39 s; the cache cut
          the system time to 0.8 s, but the page faults only to 300 000, because oneDNN
          allocates its own scratch buffers.
        - The two flip views forwarded and back-propagated side by side on two threads with one
          intra-op thread each (OpenMP's count set per thread; the BN prior's statistics
          exchanged between the threads at every batch norm, so both views still normalise
          with the statistics of both; the views' gradients taken with `autograd.grad` and
          added in view order, so the step stays deterministic). Two processes each running
          the 1-thread step side by side had suggested up to 17 % (`segttt-bench --child
          config:espnet_480x360 --threads 1` twice at once against one `--threads 2`), but
          inside one process the ESPNet step gained 3 %, 996-1032 against 1031-1066 ms (3 runs
          each, in turn, one build switched by an environment variable, 2026-11-23), with 1.5
          s more system time per run. Not worth two threads, a barrier per batch norm and a
          split backward; the patch was not kept.

        What is left in the DeepLabV2 step is oneDNN's convolutions, the same kernels on both
        sides. ESPNet's step is below its 0.5x target since SegTTT's convolution kernels:
        0.33 over 11 rounds with both (0.50 and 0.49 over 11 rounds before them, and 0.55 in
        two runs of 7). Of its profiled step the 3x3 kernel's convolutions are 42 %,
        libtorch's remaining ones 18 % (the profile above). Next in line: the 3x3 kernel
        itself (118-129 GFLOP/s at 45x60 forward and backward, about the matrix product's
        rate); the 1x1 reductions and the strided convolution, with more channels, in
        oneDNN; the ESP blocks' sums and concatenation, which would save little: over the 13
        blocks of the step, forward and backward, the sums and the concatenation take
        11.5-13.8 ms and the concatenation alone 9.5-10.8 ms (`/usr/bin/python3
        Benchmarks/ocl_profile.py sums --threads 2 --repeats 30`, two runs, 2026-11-23).
        Before the kernels, in a run with oneDNN's log on (`ONEDNN_VERBOSE=1 segttt-bench
        --child config:espnet_480x360 --threads 2 --repeats 1 > LOG`, then `python3
        Benchmarks/onednn_summary.py LOG --steps 2`, 2026-11-23, 19:00), whose step took 766
        ms with the log's own cost, oneDNN's convolutions took 395 ms and its reorders
        between libtorch's NCHW layout and its own blocked one 120 ms.
        """
    let threads: Int
    let device: Device
    /// Whether both sides flushed denormals to zero (`--denormals flush`).
    let flushDenormals: Bool
    let swift: [String: [[String: Any]]]
    let python: [String: [[String: Any]]]
    /// The current PyTorch's results by configuration and contender ("eager", "compile").
    let current: [String: [String: [String: Any]]]

    /// The CPU's model name and the vector extensions that decide its kernels, from /proc/cpuinfo.
    static var processor: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            info.split(separator: "\n").first { $0.hasPrefix(name) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let flags = Set((field("flags") ?? "").split(separator: " ").map(String.init))
        let vectors = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"].filter(
            flags.contains)
        return
            "\(field("model name") ?? "unknown CPU") (\(vectors.isEmpty ? "no AVX2" : vectors.joined(separator: ", ")))"
    }

    private func number(_ result: [String: Any]?, _ key: String) -> Double? {
        (result?[key] as? NSNumber)?.doubleValue
    }

    private func format(_ value: Double?, _ digits: Int = 1) -> String {
        guard let value, value.isFinite else { return "-" }
        return String(format: "%.\(digits)f", value)
    }

    private func ratio(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b, b > 0 else { return "-" }
        return String(format: "%.2f", a / b)
    }

    /// The lowest and highest of the step's per-round ratios Swift / PyTorch (round r of one
    /// side against round r of the other), "-" without per-round times.
    private func roundRatios(_ ours: [String: Any], _ theirs: [String: Any]) -> String {
        func times(_ result: [String: Any]) -> [Double] {
            (result["step_ms_rounds"] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.doubleValue }
        }
        let (a, b) = (times(ours), times(theirs))
        guard a.count == b.count, !a.isEmpty else { return "-" }
        let ratios = zip(a, b).map { $0 / $1 }
        return String(format: "%.2f-%.2f", ratios.min() ?? 0, ratios.max() ?? 0)
    }

    /// The step at the published resolution with the exact negative term against the step
    /// with the published Gram form at the stride it needs to fit, on both sides.
    private func publishedMemory() -> [String] {
        guard let oursGram = swift["gram-step"]?.first, let theirsGram = python["gram-step"]?.first,
            let name = oursGram["name"] as? String,
            let oursExact = swift["configs"]?.first(where: { $0["name"] as? String == name }),
            let theirsExact = python["configs"]?.first(where: { $0["name"] as? String == name })
        else { return [] }
        let stride = number(oursGram, "stride").map { String(Int($0)) } ?? "?"
        let row = { (side: String, form: String, result: [String: Any]) -> [String] in
            [
                side, form, format(number(result, "step_ms")), format(number(result, "step_peak_mib"), 0),
                number(result, "loss").map { String(format: "%.7f", $0) } ?? "-",
            ]
        }
        let rows = [
            row("Swift", "exact", oursExact), row("PyTorch", "exact", theirsExact),
            row("Swift", "Gram, stride \(stride)", oursGram), row("PyTorch", "Gram, stride \(stride)", theirsGram),
        ]
        return [
            "", "## Peak memory of the step at the published resolution", "",
            "The \(name) step with the exact negative term, against the step with the published code's Gram form "
                + "at stride \(stride), the finest that fits (at stride 2 one view's Gram matrix alone takes 64 GiB). "
                + "Swift's exact step peaks at \(ratio(number(oursExact, "step_peak_mib"), number(theirsGram, "step_peak_mib")))x "
                + "the memory of the published PyTorch step:",
            "",
            TextTable(header: ["side", "negative term", "step ms", "step peak MiB", "loss"], rows: rows).markdown(),
        ]
    }

    /// The step of each configuration that has the current PyTorch's results, against every
    /// contender: PyTorch 1.13 eager (the script under --python), the current PyTorch eager
    /// and under torch.compile; the ratio of SegTTT's step to each and to the fastest.
    private func contenders() -> [String] {
        let configs = zip(swift["configs"] ?? [], python["configs"] ?? [])
            .filter { ours, _ in current[ours["name"] as? String ?? ""] != nil }
        guard !configs.isEmpty else { return [] }
        var out = [
            "", "## Against the fastest PyTorch", "",
            "The same step (weights, input, threads, loss; denormals as above) in PyTorch 1.13 eager (the "
                + "script under `--python`), in the current PyTorch eager and under `torch.compile` (inductor on "
                + "the forward and the loss, AOTAutograd for their backward, the SGD step and the restoration "
                + "eager; `ocl_step.py --compile` under `--current-python`, installed by "
                + "`bash Scripts/install_current_torch.sh full`). The first compiled call traces and compiles "
                + "with an empty inductor cache; its time less one step is the compile time, apart from the "
                + "step's median. CPU: \(Self.processor).",
            "",
        ]
        var rows: [[String]] = []
        for (ours, theirs) in configs {
            let name = ours["name"] as? String ?? "?"
            let peers = current[name] ?? [:]
            var contenders: [(String, [String: Any])] = [
                ("PyTorch \(theirs["torch"] as? String ?? "1.13") eager", theirs)
            ]
            for (kind, label) in [("eager", "eager"), ("compile", "torch.compile")] {
                if let result = peers[kind] {
                    contenders.append(("PyTorch \(result["torch"] as? String ?? "?") \(label)", result))
                }
            }
            let ourStep = number(ours, "step_ms")
            let ourLoss = number(ours, "loss")
            let fastest = contenders.compactMap { number($0.1, "step_ms") }.min()
            rows.append([
                name, "SegTTT (libtorch \(Runtime.libtorchVersion))", format(ourStep), "-",
                ourLoss.map { String(format: "%.7f", $0) } ?? "-", "-", "-", "-",
            ])
            for (label, result) in contenders {
                let loss = number(result, "loss")
                let difference = (ourLoss != nil && loss != nil) ? Swift.abs(ourLoss! - loss!) : nil
                rows.append([
                    name, label, format(number(result, "step_ms")),
                    number(result, "compile_ms").map { format($0 / 1e3) } ?? "-",
                    loss.map { String(format: "%.7f", $0) } ?? "-",
                    difference.map { String(format: "%.1e", $0) } ?? "-",
                    ratio(ourStep, number(result, "step_ms")), roundRatios(ours, result),
                ])
            }
            rows.append([name, "the fastest contender", format(fastest), "-", "-", "-", ratio(ourStep, fastest), "-"])
        }
        out.append(
            TextTable(
                header: [
                    "configuration", "contender", "step ms", "compile s", "first loss", "|loss - SegTTT's|",
                    "SegTTT / it",
                    "per round",
                ],
                rows: rows
            ).markdown())
        return out
    }

    func markdown() -> String {
        var out = [
            "# Benchmarks", "",
            "Produced by `swift run -c release segttt-bench --threads \(threads)"
                + (device == .cpu ? "" : " --device \(device)") + (flushDenormals ? "" : " --denormals keep")
                + "` (it runs "
                + "`Benchmarks/ocl_step.py` for the PyTorch eager side), libtorch \(Runtime.libtorchVersion), "
                + "\(ProcessInfo.processInfo.activeProcessorCount) cores of \(Self.processor), \(threads) thread(s), "
                + "SegTTT's kernels in their \(Kernels.instructionSet.rawValue) code. Medians after a "
                + "warm-up; each measurement in its own process; peak memory is the process's VmHWM during it"
                + (device == .cpu ? "" : " (the host's memory, not the GPU's)") + ". "
                + "A job measured in several rounds (`--rounds`: PyTorch and Swift in turn, so that the machine's "
                + "drift hits both alike) gives the median over its rounds, and the lowest and highest "
                + "of its per-round step ratios. Denormals "
                + (flushDenormals
                    ? "flushed to zero on both sides (`Runtime.flushesDenormals`, `torch.set_flush_denormal`)."
                    : "kept on both sides (IEEE arithmetic, the default of both before segttt flushed them).")
                + (Runtime.blasThreads.map {
                    " SegTTT's processes run OpenBLAS at \($0) thread(s) (`Runtime.blasThreads`), the matrix product "
                        + "at the benchmark's thread count; the PyTorch script leaves it as it starts, one thread per "
                        + "core unless OPENBLAS_NUM_THREADS says otherwise."
                } ?? ""), "",
        ]
        let configs = zip(swift["configs"] ?? [], python["configs"] ?? [])
        let matmul = (swift["matmul"]?.first, python["matmul"]?.first)
        if !(swift["configs"] ?? []).isEmpty {
            out += ["## OCL step and source forward", ""]
            let rows = configs.map { ours, theirs -> [String] in
                let loss = number(ours, "loss")
                let theirLoss = number(theirs, "loss")
                let relative =
                    (loss != nil && theirLoss != nil) ? Swift.abs(loss! - theirLoss!) / Swift.abs(theirLoss!) : nil
                return [
                    ours["name"] as? String ?? "?",
                    format(number(ours, "step_ms")), format(number(theirs, "step_ms")),
                    ratio(number(ours, "step_ms"), number(theirs, "step_ms")),
                    format(number(ours, "forward_ms")), format(number(theirs, "forward_ms")),
                    ratio(number(ours, "forward_ms"), number(theirs, "forward_ms")),
                    format(number(ours, "step_peak_mib"), 0) + " / " + format(number(theirs, "step_peak_mib"), 0),
                    relative.map { String(format: "%.1e", $0) } ?? "-",
                    format(number(ours, "rounds") ?? 1, 0),
                    roundRatios(ours, theirs),
                ]
            }
            out.append(
                TextTable(
                    header: [
                        "configuration", "step Swift ms", "step PyTorch ms", "ratio", "forward Swift ms",
                        "forward PyTorch ms", "ratio", "step peak MiB Swift / PyTorch", "loss rel. diff", "rounds",
                        "step ratio per round",
                    ], rows: rows
                ).markdown())
            out += ["", "## Achieved FLOP/s of the step", ""]
            let mm = (number(matmul.0, "gflops"), number(matmul.1, "gflops"))
            let flopRows = configs.map { ours, theirs -> [String] in
                let gflop = (number(theirs, "step_gflop_forward") ?? 0) + (number(theirs, "step_gflop_backward") ?? 0)
                let oursRate = number(ours, "step_ms").map { gflop / $0 * 1e3 }
                let theirsRate = number(theirs, "step_ms").map { gflop / $0 * 1e3 }
                return [
                    ours["name"] as? String ?? "?", format(gflop, 2), format(oursRate, 2), format(theirsRate, 2),
                    ratio(oursRate, mm.0), ratio(theirsRate, mm.1),
                ]
            }
            out.append(
                TextTable(
                    header: [
                        "configuration", "conv GFLOP per step", "Swift GFLOP/s", "PyTorch GFLOP/s",
                        "Swift / matmul", "PyTorch / matmul",
                    ], rows: flopRows
                ).markdown())
            out += [
                "",
                "Matrix product \(matmulSize)x\(matmulSize) float32: Swift \(format(mm.0, 1)) GFLOP/s, "
                    + "PyTorch \(format(mm.1, 1)) GFLOP/s. Convolution FLOPs are counted by forward hooks in the "
                    + "Python script (2 Cin/groups k_h k_w per output element; the backward pass counts the "
                    + "forward again for the weight gradient and again for the input gradient).",
            ]
        }
        out += contenders()
        out += publishedMemory()
        let negatives = zip(swift["negative"] ?? [], python["negative"] ?? [])
        if !(swift["negative"] ?? []).isEmpty {
            out += ["", "## The negative term at the published resolution", ""]
            out.append(
                "q = l2normalize(softmax(z)) of logits z \(negativeShape) (two views of 512x1024), forward and backward:"
            )
            out.append("")
            let rows = negatives.map { ours, theirs -> [String] in
                let form = ours["form"] as? String ?? "?"
                let stride = number(ours, "stride").map { String(Int($0)) } ?? "?"
                guard ours["fits"] as? Bool ?? false else {
                    return [form, stride, "does not fit (Gram matrix and its gradient > 8 GiB)", "", "", "", ""]
                }
                return [
                    form, stride, format(number(ours, "ms")), format(number(theirs, "ms")),
                    format(number(ours, "peak_mib"), 0), format(number(theirs, "peak_mib"), 0),
                    number(ours, "value").map { String(format: "%.7f", $0) } ?? "-",
                ]
            }
            out.append(
                TextTable(
                    header: [
                        "form", "stride", "Swift ms", "PyTorch ms", "Swift peak MiB", "PyTorch peak MiB", "value",
                    ],
                    rows: rows
                ).markdown())
        }
        out += ["", Self.profile]
        return out.joined(separator: "\n") + "\n"
    }
}
