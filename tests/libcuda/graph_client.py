"""Run by test_cuda_runtime.py in a child process over the OrionX
libcuda.so.1: CUDA graphs through NVIDIA's cuda.bindings.runtime, built by
hand and by stream capture (with a fork into a second stream and a join),
launched and checked. Prints "PASSED"."""

import ctypes
import pathlib
import sys

import numpy as np
from cuda.bindings import driver, runtime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples"))
from kernels import PTX  # noqa: E402 - axpy_f32(y, x, n, a): y = a * x + y

E = runtime.cudaError_t
KIND = runtime.cudaMemcpyKind
N = 4096


def ok(result):
    assert result[0] == E.cudaSuccess, result
    values = result[1:]
    return values[0] if len(values) == 1 else (values or None)


def axpy_params(y, x, a):
    """cuda.bindings' (values, types) form of axpy_f32's parameters."""
    return ((int(y), int(x), N, a),
            (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_float))


def kernel_node_params(function, y, x, a):
    params = driver.CUDA_KERNEL_NODE_PARAMS()
    params.func = function
    params.gridDimX, params.gridDimY, params.gridDimZ = N // 256, 1, 1
    params.blockDimX, params.blockDimY, params.blockDimZ = 256, 1, 1
    params.sharedMemBytes = 0
    params.kernelParams = axpy_params(y, x, a)
    return params


def copy_params(dst, src, kind):
    params = runtime.cudaMemcpy3DParms()
    params.srcPtr = runtime.make_cudaPitchedPtr(src, 4 * N, N, 1)
    params.dstPtr = runtime.make_cudaPitchedPtr(dst, 4 * N, N, 1)
    params.extent = runtime.make_cudaExtent(4 * N, 1, 1)
    params.kind = kind
    return params


def manual_graph(function, host_x, host_y, x, y, done):
    """y <- 0 and x <- host_x (made in that order, the edge between them
    added afterwards the other way round), y = 2x + y, host_y <- y, then
    event DONE recorded: five nodes."""
    graph = ok(runtime.cudaGraphCreate(0))
    zero = runtime.cudaMemsetParams()
    zero.dst, zero.value, zero.elementSize, zero.width, zero.height = y, 0, 4, N, 1
    cleared = ok(runtime.cudaGraphAddMemsetNode(graph, None, 0, zero))
    upload = ok(runtime.cudaGraphAddMemcpyNode(graph, None, 0, copy_params(
        x, host_x.ctypes.data, KIND.cudaMemcpyHostToDevice)))
    try:  # cuda-bindings 13: with edge data (CUDA 12.3's form)
        ok(runtime.cudaGraphAddDependencies(graph, [upload], [cleared], None, 1))
    except TypeError:  # cuda-bindings 12
        ok(runtime.cudaGraphAddDependencies(graph, [upload], [cleared], 1))
    node = driver.cuGraphAddKernelNode(graph, [cleared], 1, kernel_node_params(function, y, x, 2.0))
    assert node[0] == driver.CUresult.CUDA_SUCCESS, node
    download = ok(runtime.cudaGraphAddMemcpyNode(graph, [node[1]], 1, copy_params(
        host_y.ctypes.data, y, KIND.cudaMemcpyDeviceToHost)))
    ok(runtime.cudaGraphAddEventRecordNode(graph, [download], 1, done))
    _, count = ok(runtime.cudaGraphGetNodes(graph))
    assert count == 5, count
    _, roots = ok(runtime.cudaGraphGetRootNodes(graph))
    assert roots == 1, roots  # the upload: the memset waits for it now
    return graph


def captured_graph(function, host_x, host_y, x, y, done):
    """The same by capture: stream 1 uploads x, stream 2 (forked off it)
    clears y, stream 1 joins it, then launches and downloads."""
    first = ok(runtime.cudaStreamCreateWithFlags(runtime.cudaStreamNonBlocking))
    second = ok(runtime.cudaStreamCreateWithFlags(runtime.cudaStreamNonBlocking))
    fork, joined = ok(runtime.cudaEventCreate()), ok(runtime.cudaEventCreate())
    global_mode = runtime.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
    ok(runtime.cudaStreamBeginCapture(first, global_mode))
    status = ok(runtime.cudaStreamIsCapturing(first))
    assert status == runtime.cudaStreamCaptureStatus.cudaStreamCaptureStatusActive, status
    ok(runtime.cudaEventRecord(fork, first))
    ok(runtime.cudaStreamWaitEvent(second, fork, 0))      # second joins the capture
    ok(runtime.cudaMemcpyAsync(x, host_x.ctypes.data, 4 * N, KIND.cudaMemcpyHostToDevice, first))
    ok(runtime.cudaMemsetAsync(y, 0, 4 * N, second))
    ok(runtime.cudaEventRecord(joined, second))
    ok(runtime.cudaStreamWaitEvent(first, joined, 0))     # and is joined back
    launched = driver.cuLaunchKernel(function, N // 256, 1, 1, 256, 1, 1, 0,
                                     driver.CUstream(int(first)), axpy_params(y, x, 2.0), 0)
    assert launched[0] == driver.CUresult.CUDA_SUCCESS, launched
    ok(runtime.cudaMemcpyAsync(host_y.ctypes.data, y, 4 * N, KIND.cudaMemcpyDeviceToHost, first))
    del done  # an event recorded in a capture marks a place; it makes no node
    # Nothing ran yet: the captured work is only the graph's.
    assert not host_y.any()
    result = runtime.cudaStreamEndCapture(second)          # not the origin
    assert result[0] == E.cudaErrorStreamCaptureUnmatched, result
    graph = ok(runtime.cudaStreamEndCapture(first))
    status = ok(runtime.cudaStreamIsCapturing(second))
    assert status == runtime.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone, status
    _, count = ok(runtime.cudaGraphGetNodes(graph))
    assert count == 4, count
    for handle in (first, second):
        ok(runtime.cudaStreamDestroy(handle))
    return graph


def main():
    ok(runtime.cudaFree(0))
    module = driver.cuModuleLoadData(PTX)
    assert module[0] == driver.CUresult.CUDA_SUCCESS, module
    function = driver.cuModuleGetFunction(module[1], b"axpy_f32")[1]
    host_x = np.arange(N, dtype=np.float32)
    host_y = np.zeros(N, dtype=np.float32)
    x, y = ok(runtime.cudaMalloc(4 * N)), ok(runtime.cudaMalloc(4 * N))
    stream = ok(runtime.cudaStreamCreate())
    done = ok(runtime.cudaEventCreate())
    for build in (manual_graph, captured_graph):
        host_y[:] = 0
        graph = build(function, host_x, host_y, x, y, done)
        clone = ok(runtime.cudaGraphClone(graph))
        for source in (graph, clone):
            executable = ok(runtime.cudaGraphInstantiate(source, 0))
            for scale in (1, 3):  # the graph reads host_x when it runs
                host_x[:] = np.arange(N, dtype=np.float32) * scale
                ok(runtime.cudaGraphLaunch(executable, stream))
                if build is manual_graph:
                    ok(runtime.cudaEventSynchronize(done))  # the graph's last node
                ok(runtime.cudaStreamSynchronize(stream))
                np.testing.assert_array_equal(host_y, 2 * host_x, err_msg=build.__name__)
            ok(runtime.cudaGraphExecDestroy(executable))
            ok(runtime.cudaGraphDestroy(source))
    # The default stream cannot be captured.
    result = runtime.cudaStreamBeginCapture(
        0, runtime.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)
    assert result[0] == E.cudaErrorStreamCaptureUnsupported, result
    assert runtime.cudaGetLastError()[0] == E.cudaErrorStreamCaptureUnsupported
    assert runtime.cudaGetLastError()[0] == E.cudaSuccess  # not sticky
    ok(runtime.cudaFree(x))
    ok(runtime.cudaFree(y))
    print("PASSED")


if __name__ == "__main__":
    main()
