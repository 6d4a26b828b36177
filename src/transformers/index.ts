/** GPT-2-family transformers: modules with PyTorch's names, Hugging Face folders, generation. */
export { GPT2Config, GPT2_DEFAULTS, type GPT2ConfigFields } from './gpt2/config.js';
export { GPT2Attention, causalMask, type LayerPast } from './gpt2/attention.js';
export { GPT2MLP } from './gpt2/mlp.js';
export { GPT2Block } from './gpt2/block.js';
export {
  GPT2Model, GPT2LMHeadModel, type PastKeyValues, type ForwardOptions, type ForwardOutput, type GPT2InitOptions,
} from './gpt2/model.js';
export { fromPretrained, savePretrained, loadConfig, type LoadOptions, type SaveOptions } from './gpt2/pretrained.js';
export { runSync, runAsync, hasForwardAsync, type LayerCall, type LayerSteps, type AsyncForward } from './layer-calls.js';
export { ModelFolderError } from './errors.js';
export { generate, type GenerateOptions, type GenerateOutput, type FinishReason } from './generation.js';
export { sampleToken, argmax, type SamplingOptions } from './sampling.js';
export { TextStreamer, type Decoder } from './text-streamer.js';
export { GPT2Tokenizer, TokenizerFileError, GPT2_EOS_TOKEN, GPT2_EOS_TOKEN_ID } from './tokenizer.js';
