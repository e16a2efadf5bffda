"""The shipped workload shapes load from the package (no file outside it) and add up to the known networks."""

from kernel_lib import workloads


def test_resnet50_layers_add_up_to_the_network():
    layers = workloads.resnet50(batch=1)
    assert len(layers) == 24 and sum(layer.count for layer in layers) == 53  # 53 conv layers in ResNet-50
    total = sum(layer.macs * layer.count for layer in layers)
    assert 4.0e9 < total < 4.2e9  # ResNet-50 v1.5 is ~4.1 GMACs per 224x224 image


def test_bert_base_gemms_scale_with_batch_and_sequence():
    layers = {layer.name: layer for layer in workloads.bert_base(batch=2, sequence=64)}
    assert (layers["ffn_up"].m, layers["ffn_up"].n, layers["ffn_up"].k) == (128, 3072, 768)
    assert (layers["attention_scores"].m, layers["attention_scores"].batch) == (64, 24)
