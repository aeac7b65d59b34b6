/** Argument checks every scheduler makes, with errors that say which call went wrong. */

export function checkInferenceSteps(scheduler: string, numInferenceSteps: number, numTrainTimesteps: number): void {
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > numTrainTimesteps) {
    throw new RangeError(`${scheduler}: the number of inference steps must be an integer in [1, ${numTrainTimesteps}] (got ${numInferenceSteps})`);
  }
}

export function checkStepInputs(scheduler: string, modelOutput: Float32Array, sample: Float32Array): void {
  if (modelOutput.length !== sample.length) {
    throw new RangeError(`${scheduler}: model output has ${modelOutput.length} values but the sample has ${sample.length}`);
  }
}

/** A training timestep used as an index into ᾱ: an integer in [0, T). */
export function checkTrainingTimestep(scheduler: string, timestep: number, numTrainTimesteps: number): number {
  if (!Number.isInteger(timestep) || timestep < 0 || timestep >= numTrainTimesteps) {
    throw new RangeError(`${scheduler}: timestep ${timestep} is not an integer in [0, ${numTrainTimesteps})`);
  }
  return timestep;
}

export function notReady(scheduler: string): never {
  throw new Error(`${scheduler}: call setTimesteps() before step()`);
}
