"""Building blocks shared by the systems: audio encoder/decoder, dual-path separator, masking model, SI-SNR loss,
the official visual initialisation."""

from avse_bench.nn.audio import AudioDecoder, AudioEncoder
from avse_bench.nn.avmask import AVMaskNet
from avse_bench.nn.init import avsec_visual_init
from avse_bench.nn.loss import si_snr_loss
from avse_bench.nn.separator import DualPathBlock, PathRNN, Separator, chunk, overlap_add
from avse_bench.nn.visual import FrameVisualEncoder, per_frame_features

__all__ = ["AVMaskNet", "AudioDecoder", "AudioEncoder", "DualPathBlock", "FrameVisualEncoder", "PathRNN", "Separator",
           "avsec_visual_init", "chunk", "overlap_add", "per_frame_features", "si_snr_loss"]
