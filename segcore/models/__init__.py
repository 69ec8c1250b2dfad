"""models/: shared layers (layers.py), the nets (vgg, fcn, alexnet, googlenet, unet, fusion), heads, surgery, backbone records, model files, and the registry; imports core, config and data only (data for the Preprocess record, the smoke pretraining objects and the caffemodel download), never eval/train/report/pipeline.

Imports inside the package form no cycle ("a <- b": b imports a): layers <- every net;
vgg <- fcn (FCN, SingleUpsamplingFCN) <- alexnet, googlenet, fusion; the nets <- surgery, registry;
surgery <- backbone; registry <- modelfile <- caffe (the Caffe VGG16 and AlexNet reader, also after vgg and
alexnet) <- backbone. upsampling (the fixed bilinear layer's forms) <- layers, which imports no other model
module. caffe, registry, modelfile, upsampling <- released (the FCN authors' released nets: catalogue and
strict loader; it also reads data.specs for the input record).
"""
