"""PTX on the simulated GPU: a parser, an executor vectorised with numpy, images.

``images.ptx_text`` finds the PTX in what cuModuleLoadData was given,
``executor.Program`` parses and compiles it (refusing at load whatever it
cannot run, naming the line), and ``executor.run`` executes one launch of a
kernel with every global access checked against the session's allocations.
"""
