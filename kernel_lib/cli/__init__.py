"""kernel_lib's command lines: `npu-tune` (`kernel_lib.cli.tune`) and `npu-codesign` (`kernel_lib.cli.codesign`)."""
