import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { JobQueueService } from './job-queue.service.js';
import { QueueName } from './names.js';

@Module({
  imports: [
    BullModule.registerQueue({ name: QueueName.Index }, { name: QueueName.Retention }, { name: QueueName.Tiering }, { name: QueueName.Migration }),
  ],
  providers: [JobQueueService],
  exports: [JobQueueService, BullModule],
})
export class JobsModule {}
